/** A device's data-plane figures (the chart keeps only states and reconnects). */
export interface DeviceCounters {
  frames: number;
  bytes: number;
  errors: number;
  /** readings the outbox did not take (closed, or full with rejectNew) */
  dropped: number;
  lastFrameAt: number | null;
  lastMalformed: string | null;
}

export type ReadingListener = (device: string, reading: Record<string, unknown>) => void;

const MAX_KNOWN = 256;

/**
 * Where readings meet their consumers beside the charts: counters per device, and the /ws
 * subscribers (each with the set of device ids it wants, or all). Counters of devices no
 * longer present are kept for the API until MAX_KNOWN devices have been seen.
 */
export class DeviceHub {
  private readonly counters = new Map<string, DeviceCounters>();
  private readonly listeners = new Map<ReadingListener, Set<string> | null>();

  countersOf(id: string): DeviceCounters {
    let c = this.counters.get(id);
    if (!c) {
      c = { frames: 0, bytes: 0, errors: 0, dropped: 0, lastFrameAt: null, lastMalformed: null };
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
    this.listeners.set(listener, ids);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(device: string, reading: Record<string, unknown>): void {
    for (const [listener, ids] of this.listeners) {
      if (ids && !ids.has(device)) continue;
      try {
        listener(device, reading);
      } catch {
        // one broken subscriber does not stop the others
      }
    }
  }
}
