import { createHash } from 'node:crypto';
import type { AnyActorRef } from 'xstate';
import type { FirmwareMeta } from '../../machines/firmware-entry.js';
import type { FirmwareContext } from '../../machines/firmware.js';
import type { Failure } from '../../machines/shared/types.js';
import type { Logger } from '../log.js';
import type { ActorChanges } from '../observe.js';

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

interface EntrySnapshot {
  status: string;
  context: { current: FirmwareMeta | null; lastError: Failure | null };
  hasTag(tag: string): boolean;
  matches(value: unknown): boolean;
}

type Waiter = { accept: (snap: EntrySnapshot | undefined) => boolean; resolve: () => void };

export interface FirmwareStats {
  hits: number;
  misses: number;
}

/**
 * The data plane of the firmware concern. A request for a device with a verified build in
 * memory is answered from here without touching the charts (one Map lookup); otherwise the
 * manager is asked (which spawns at most one entry per device, so concurrent cold requests
 * share one registry round trip) and the request waits for that entry to settle. The hot map
 * follows the entries' snapshots through the inspection stream.
 */
export class FirmwareService {
  readonly hot = new Map<string, HotFirmware>();
  /** bytes verified (or loaded from disk) whose entry has not shown them yet */
  readonly pending = new Map<string, { digest: string; bytes: Buffer }>();
  readonly stats: FirmwareStats = { hits: 0, misses: 0 };
  /** requests answered from memory per device, since its build came into memory (bounded by `hot`) */
  private readonly deviceHits = new Map<string, number>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private touched = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  /** when the registry outage the manager shows began (logged once, and its end) */
  private outageSince: number | undefined;

  constructor(
    private readonly root: () => AnyActorRef | undefined,
    changes: ActorChanges,
    private readonly options: { waitMs: number; onTouched?: (devices: string[]) => void; log?: Logger },
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

  /** The device's build, from memory when there is one; undefined when there is no good build. */
  async get(device: string): Promise<HotFirmware | undefined> {
    const hot = this.peek(device);
    if (hot) return hot;
    this.stats.misses++;
    await this.ask(device, 'firmware.request', (snap) => this.hot.has(device) || snap.hasTag('missing'));
    const found = this.hot.get(device);
    if (found?.stale) found.ref.send({ type: 'firmware.request' });
    return found;
  }

  /** Requests answered from memory for each device whose build is in memory. */
  hitsByDevice(): Record<string, number> {
    return Object.fromEntries([...this.hot.keys()].map((device) => [device, this.deviceHits.get(device) ?? 0]));
  }

  /** Refreshes the device now (a webhook) and resolves once that refresh has settled. */
  async refresh(device: string): Promise<RefreshOutcome> {
    const before = this.hot.get(device);
    let settled: EntrySnapshot | undefined;
    const busy = (s: EntrySnapshot) => s.matches('empty') || s.matches('cold') || s.matches({ ready: 'refreshing' });
    await this.ask(device, 'firmware.refresh', (snap) => snap !== undefined && !busy(snap) && Boolean((settled = snap)), true);
    settled ??= this.entrySnapshot(device);
    return { before, after: this.hot.get(device), failure: settled?.context.lastError ?? null };
  }

  private entrySnapshot(device: string): EntrySnapshot | undefined {
    const child = (this.manager()?.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> } | undefined)?.children?.[`firmware:${device}`];
    return child?.getSnapshot() as EntrySnapshot | undefined;
  }

  private ask(device: string, type: 'firmware.request' | 'firmware.refresh', done: (snap: EntrySnapshot) => boolean, afterSend = false): Promise<void> {
    const manager = this.manager();
    if (!manager) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let armed = !afterSend;
      const timeout = setTimeout(() => finish(), this.options.waitMs);
      const set = this.waiters.get(device) ?? new Set<Waiter>();
      const waiter: Waiter = { accept: (snap) => armed && (snap === undefined || done(snap)), resolve: () => finish() };
      const finish = () => {
        clearTimeout(timeout);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(device) === set) this.waiters.delete(device);
        resolve();
      };
      set.add(waiter);
      this.waiters.set(device, set);
      manager.send({ type, device });
      armed = true;
      // The send may have settled it at once (an entry that was idle and needed nothing).
      const child = (manager.getSnapshot() as { children: Record<string, AnyActorRef | undefined> }).children[`firmware:${device}`];
      const snap = child?.getSnapshot() as EntrySnapshot | undefined;
      if (!child || snap?.status !== 'active' || done(snap)) finish();
    });
  }

  private onChange(ref: AnyActorRef): void {
    if (ref.id === 'firmware') return this.prune(ref);
    if (!ref.id.startsWith('firmware:')) return;
    const device = ref.id.slice('firmware:'.length);
    const snap = ref.getSnapshot() as EntrySnapshot;
    if (snap.status !== 'active') {
      this.drop(device);
      return this.settle(device, undefined);
    }
    const current = snap.context.current;
    if (current && snap.hasTag('serving')) {
      let hot = this.hot.get(device);
      // A new build object (even with the same bytes under a new tag) gets its headers anew.
      if (!hot || hot.ref !== ref || hot.meta !== current) {
        const pending = this.pending.get(device);
        const bytes = pending?.digest === current.digest ? pending.bytes : hot?.meta.digest === current.digest ? hot.body : undefined;
        if (bytes) {
          hot = makeHot(ref, current, bytes);
          this.hot.set(device, hot);
          this.pending.delete(device);
        }
      }
      if (hot) hot.stale = snap.matches({ ready: 'stale' });
    }
    this.settle(device, snap);
  }

  /** Entries the manager no longer holds (evicted, ended, a restarted concern) leave memory. */
  private prune(manager: AnyActorRef): void {
    const snap = manager.getSnapshot() as { status: string; context?: FirmwareContext };
    this.followOutage(snap.status === 'active' ? (snap.context?.outage ?? null) : null);
    const live = snap.status === 'active' ? (snap.context?.entries ?? {}) : {};
    for (const device of [...this.hot.keys(), ...this.pending.keys(), ...this.waiters.keys()]) {
      if (!(device in live)) {
        this.drop(device);
        this.settle(device, undefined);
      }
    }
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

  private drop(device: string): void {
    this.hot.delete(device);
    this.deviceHits.delete(device);
    this.pending.delete(device);
  }

  private settle(device: string, snap: EntrySnapshot | undefined): void {
    for (const waiter of [...(this.waiters.get(device) ?? [])]) if (waiter.accept(snap)) waiter.resolve();
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
