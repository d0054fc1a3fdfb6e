import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real small file system that fills up: a tmpfs of `size` (e.g. "1m"). Needs root (CI runs as root). */
export function mountTmpfs(size: string): { dir: string; unmount: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) throw new Error(`cannot mount a tmpfs on ${dir}: ${mounted.stderr.trim()}`);
  return {
    dir,
    unmount: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether this process may mount file systems (root); the full-disk tests need it. */
export const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0;
