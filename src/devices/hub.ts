import type { WriteRefusal } from '../../machines/device.js';
import { Topic } from '../events.js';
import type { FrameRejection } from './protocols.js';

/** The last frame a device sent that was rejected, and why. */
export interface Rejection {
  reason: FrameRejection;
  message: string;
  at: number;
}

/** A device's data-plane figures (the chart keeps only states and reconnects). */
export interface DeviceCounters {
  frames: number;
  bytes: number;
  /** rejected frames, all reasons together */
  errors: number;
  /** rejected frames by reason (a fixed set of codes) */
  rejected: Partial<Record<FrameRejection, number>>;
  lastRejected: Rejection | null;
  /** readings the outbox did not take (closed, or full with rejectNew) */
  dropped: number;
  lastFrameAt: number | null;
  /** writes done, and writes refused by reason */
  writes: number;
  writesRefused: Partial<Record<WriteRefusal, number>>;
}

/** What live subscribers (/ws) get: each reading, and each rejected frame with its reason. */
export type HubEvent = { type: 'reading'; reading: Record<string, unknown> } | ({ type: 'rejected' } & Rejection);

export type ReadingListener = (device: string, event: HubEvent) => void;

const MAX_KNOWN = 256;

/**
 * Where readings meet their consumers beside the charts: counters per device, and the /ws
 * subscribers (each with the set of device ids it wants, or all). Counters of devices no
 * longer present are kept for the API until MAX_KNOWN devices have been seen.
 */
export class DeviceHub {
  private readonly counters = new Map<string, DeviceCounters>();
  private readonly events = new Topic<{ device: string; event: HubEvent }>((e) => e.device);

  countersOf(id: string): DeviceCounters {
    let c = this.counters.get(id);
    if (!c) {
      c = { frames: 0, bytes: 0, errors: 0, rejected: {}, lastRejected: null, dropped: 0, lastFrameAt: null, writes: 0, writesRefused: {} };
      this.counters.set(id, c);
      if (this.counters.size > MAX_KNOWN) this.counters.delete(this.counters.keys().next().value!);
    }
    return c;
  }

  peek(id: string): DeviceCounters | undefined {
    return this.counters.get(id);
  }

  all(): Map<string, DeviceCounters> {
    return this.counters;
  }

  /** `ids` null: every device. Returns the unsubscribe function. */
  subscribe(listener: ReadingListener, ids: Set<string> | null = null): () => void {
    return this.events.subscribe(({ device, event }) => listener(device, event), ids);
  }

  get listenerCount(): number {
    return this.events.listenerCount;
  }

  publish(device: string, reading: Record<string, unknown>): void {
    this.send(device, { type: 'reading', reading });
  }

  /** Counts a rejected frame under its reason and tells the subscribers. */
  reject(device: string, rejection: Rejection): void {
    const c = this.countersOf(device);
    c.errors++;
    c.rejected[rejection.reason] = (c.rejected[rejection.reason] ?? 0) + 1;
    c.lastRejected = rejection;
    if (this.events.listenerCount > 0) this.send(device, { type: 'rejected', ...rejection });
  }

  private send(device: string, event: HubEvent): void {
    this.events.publish({ device, event });
  }
}
