import { watch, type FSWatcher } from 'node:fs';
import { loadProfiles, type Profile, type ProfileError } from './profiles.js';

/**
 * The profiles of one directory, reloaded when a file in it changes (inotify through
 * fs.watch, debounced), so a new or edited profile is picked up without a restart. A reload
 * that finds a bad file keeps the good ones and reports the bad one.
 */
export class ProfileStore {
  profiles = new Map<string, Profile>();
  errors: ProfileError[] = [];
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly onChange: (store: ProfileStore) => void,
    private readonly onErrors: (errors: ProfileError[]) => void,
    private readonly debounceMs = 200,
  ) {}

  async open(): Promise<void> {
    await this.reload();
    try {
      this.watcher = watch(this.dir, () => this.schedule());
      this.watcher.on('error', () => this.schedule());
    } catch (error) {
      this.onErrors([{ file: this.dir, message: `not watched, changes need a restart: ${(error as Error).message}` }]);
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload().then(() => this.onChange(this)), this.debounceMs);
  }

  private async reload(): Promise<void> {
    const { profiles, errors } = await loadProfiles(this.dir);
    if (this.closed) return;
    this.profiles = profiles;
    this.errors = errors;
    if (errors.length > 0) this.onErrors(errors);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
