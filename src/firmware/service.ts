import { createHash } from 'node:crypto';
import { waitFor, type ActorRefFrom, type AnyActorRef, type SnapshotFrom } from 'xstate';
import type { FirmwareMeta, firmwareEntryMachine } from '../../machines/firmware-entry.js';
import { entryId, type FirmwareContext } from '../../machines/firmware.js';
import type { Failure } from '../../machines/shared/types.js';
import type { Logger } from '../log.js';
import type { ActorChanges } from '../observe.js';
import type { VerifiedBlobs } from './blobs.js';

/** A verified build ready to serve, with everything a response needs computed once. */
export interface HotFirmware {
  ref: AnyActorRef;
  meta: FirmwareMeta;
  body: Buffer;
  /** `<version>\n<crc32>\n<size>`, no trailing newline (OtaFlux's /version body) */
  versionBody: string;
  etag: string;
  md5: string;
  sha256: string;
  /** served as is; the next request starts a refresh */
  stale: boolean;
  /** response headers of a plain 200, computed once */
  versionHeaders: Record<string, string>;
  firmwareHeaders: Record<string, string>;
}

/** What a refresh (a webhook) came to: the build served before and after, and why it failed. */
export interface RefreshOutcome {
  before: HotFirmware | undefined;
  after: HotFirmware | undefined;
  failure: Failure | null;
}

type EntryRef = ActorRefFrom<typeof firmwareEntryMachine>;
type EntrySnapshot = SnapshotFrom<typeof firmwareEntryMachine>;

export interface FirmwareStats {
  hits: number;
  misses: number;
}

export interface FirmwareServiceOptions {
  /** verified bytes by digest (the actors put them there) */
  blobs: Pick<VerifiedBlobs, 'get' | 'release'>;
  /** how long a request waits for its device's entry to settle */
  waitMs: number;
  onTouched?: (devices: string[]) => void;
  log?: Logger;
}

/** An entry that is still looking (cold, or a refresh under way) has not settled. */
const busy = (s: EntrySnapshot) => s.matches('empty') || s.matches('cold') || s.matches({ ready: 'refreshing' });

/**
 * The data plane of the firmware concern. A request for a device with a verified build in
 * memory is answered from here without touching the charts (one Map lookup); otherwise the
 * manager is asked (which spawns at most one entry per device, so concurrent cold requests
 * share one registry round trip) and the request waits, with xstate's waitFor, for that
 * entry to settle. The hot map follows the entries' snapshots through the inspection stream:
 * a serving entry names its build's digest, and the bytes come from the blob store under it.
 */
export class FirmwareService {
  readonly hot = new Map<string, HotFirmware>();
  readonly stats: FirmwareStats = { hits: 0, misses: 0 };
  /** requests answered from memory per device, since its build came into memory (bounded by `hot`) */
  private readonly deviceHits = new Map<string, number>();
  private touched = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  /** when the registry outage the manager shows began (logged once, and its end) */
  private outageSince: number | undefined;

  constructor(
    private readonly root: () => AnyActorRef | undefined,
    changes: ActorChanges,
    private readonly options: FirmwareServiceOptions,
  ) {
    changes.subscribe((ref) => this.onChange(ref));
    // LRU use reaches the manager in batches, not as one event per request.
    this.timer = setInterval(() => this.flushTouched(), 2000).unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private manager(): AnyActorRef | undefined {
    return this.root()?.system.get('firmware') as AnyActorRef | undefined;
  }

  /** The device's build when it is in memory (a hit: counted, and a stale one starts a refresh). */
  peek(device: string): HotFirmware | undefined {
    const hot = this.hot.get(device);
    if (hot) {
      this.stats.hits++;
      this.deviceHits.set(device, (this.deviceHits.get(device) ?? 0) + 1);
      this.touched.add(device);
      if (hot.stale) hot.ref.send({ type: 'firmware.request' });
    }
    return hot;
  }

  /** Requests answered from memory for each device whose build is in memory. */
  hitsByDevice(): Record<string, number> {
    return Object.fromEntries([...this.hot.keys()].map((device) => [device, this.deviceHits.get(device) ?? 0]));
  }

  /** The device's build, from memory when there is one; undefined when there is no good build. */
  async get(device: string): Promise<HotFirmware | undefined> {
    const hot = this.peek(device);
    if (hot) return hot;
    this.stats.misses++;
    await this.ask(device, 'firmware.request', (snap) => snap.hasTag('serving') || snap.hasTag('missing'));
    const found = this.hot.get(device);
    if (found?.stale) found.ref.send({ type: 'firmware.request' });
    return found;
  }

  /** Refreshes the device now (a webhook) and resolves once that refresh has settled. */
  async refresh(device: string): Promise<RefreshOutcome> {
    const before = this.hot.get(device);
    const settled = await this.ask(device, 'firmware.refresh', (snap) => !busy(snap));
    return { before, after: this.hot.get(device), failure: settled?.context.lastError ?? null };
  }

  /**
   * Sends the request to the manager, then waits (bounded by waitMs) until the device's
   * entry shows `settled` or ends. The entry's last live snapshot; undefined when there is
   * no entry or it ended (no build, evicted, the concern restarted).
   */
  private async ask(
    device: string,
    type: 'firmware.request' | 'firmware.refresh',
    settled: (snap: EntrySnapshot) => boolean,
  ): Promise<EntrySnapshot | undefined> {
    const manager = this.manager();
    if (!manager) return undefined;
    manager.send({ type, device });
    const entry = (manager.getSnapshot() as { children: Record<string, AnyActorRef | undefined> }).children[entryId(device)] as EntryRef | undefined;
    if (!entry) return undefined;
    const snap = await waitFor(entry, (s) => s.status !== 'active' || settled(s), { timeout: this.options.waitMs }).catch(() => entry.getSnapshot());
    return snap.status === 'active' ? snap : undefined;
  }

  private onChange(ref: AnyActorRef): void {
    if (ref.id === 'firmware') return this.prune(ref);
    if (!ref.id.startsWith('firmware:')) return;
    const device = ref.id.slice('firmware:'.length);
    const snap = ref.getSnapshot() as EntrySnapshot;
    if (snap.status !== 'active') return this.drop(device);
    const current = snap.context.current;
    if (!current || !snap.hasTag('serving')) return;
    let hot = this.hot.get(device);
    // A new build object (even with the same bytes under a new tag) gets its headers anew.
    if (!hot || hot.ref !== ref || hot.meta !== current) {
      const before = hot?.meta.digest;
      const bytes = this.options.blobs.get(current.digest) ?? (before === current.digest ? hot?.body : undefined);
      if (bytes) {
        hot = makeHot(ref, current, bytes);
        this.hot.set(device, hot);
        if (before !== undefined && before !== current.digest) this.release(before);
      }
    }
    if (hot) hot.stale = snap.matches({ ready: 'stale' });
  }

  private drop(device: string): void {
    const hot = this.hot.get(device);
    if (!hot) return;
    this.hot.delete(device);
    this.deviceHits.delete(device);
    this.release(hot.meta.digest);
  }

  /**
   * Lets the blob store drop a build's bytes once nothing holds them: no device serves them,
   * no live entry has them as its build or is fetching them, and no entry is still reading the
   * disk cache (it may be loading them now; the store's own bound covers that case).
   */
  private release(digest: string): void {
    if ([...this.hot.values()].some((h) => h.meta.digest === digest)) return;
    const manager = this.manager()?.getSnapshot() as
      | { status: string; context?: FirmwareContext; children?: Record<string, AnyActorRef | undefined> }
      | undefined;
    if (manager?.status === 'active') {
      if (Object.values(manager.context?.entries ?? {}).some((use) => use.digest === digest)) return;
      for (const [id, child] of Object.entries(manager.children ?? {})) {
        if (!id.startsWith('firmware:') || !child) continue;
        const s = child.getSnapshot() as EntrySnapshot;
        if (s.status === 'active' && (s.matches('empty') || s.context.resolved?.layer.digest === digest || s.context.current?.digest === digest)) return;
      }
    }
    this.options.blobs.release(digest);
  }

  /** Entries the manager no longer holds (evicted, ended, a restarted concern) leave memory. */
  private prune(manager: AnyActorRef): void {
    const snap = manager.getSnapshot() as { status: string; context?: FirmwareContext };
    this.followOutage(snap.status === 'active' ? (snap.context?.outage ?? null) : null);
    const live = snap.status === 'active' ? (snap.context?.entries ?? {}) : {};
    for (const device of [...this.hot.keys()]) if (!(device in live)) this.drop(device);
  }

  /** One line when the registry becomes unreachable, one when it answers again. */
  private followOutage(outage: Failure | null): void {
    if (outage && this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.options.log?.warn({ reason: outage.message, code: outage.code }, 'firmware registry unreachable: serving the last good builds until it answers');
    } else if (!outage && this.outageSince !== undefined) {
      this.options.log?.info({ downSeconds: Math.round((Date.now() - this.outageSince) / 1000) }, 'firmware registry reachable again');
      this.outageSince = undefined;
    }
  }

  private flushTouched(): void {
    if (this.touched.size === 0) return;
    const devices = [...this.touched];
    this.touched = new Set();
    this.manager()?.send({ type: 'firmware.touched', devices });
    this.options.onTouched?.(devices);
  }
}

function makeHot(ref: AnyActorRef, meta: FirmwareMeta, body: Buffer): HotFirmware {
  const hex = meta.digest.replace(/^sha256:/, '');
  const versionBody = `${meta.version}\n${meta.crc32}\n${meta.size}`;
  const etag = `"${hex}"`;
  const md5 = createHash('md5').update(body).digest('hex');
  return {
    ref,
    meta,
    body,
    versionBody,
    etag,
    md5,
    sha256: hex,
    stale: false,
    versionHeaders: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(versionBody)) },
    firmwareHeaders: {
      'content-type': 'application/octet-stream',
      'content-length': String(body.length),
      'accept-ranges': 'bytes',
      etag,
      'x-firmware-version': meta.version,
      'x-firmware-crc32': String(meta.crc32),
      'x-firmware-sha256': hex,
      // Arduino-ESP32's HTTPUpdate checks the image against it.
      'x-md5': md5,
    },
  };
}
