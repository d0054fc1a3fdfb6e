import type { MonitorSample } from '../../machines/monitor.js';

export type SampleListener = (sample: MonitorSample) => void;

/**
 * Where stored samples meet their consumers beside the chart: /ws subscribers (each with the
 * device ids it wants, or all) and the alerts feed. A sample is published here only after
 * it is committed to the history.
 */
export class MonitorHub {
  private readonly listeners = new Map<SampleListener, Set<string> | null>();

  /** `devices` null: every device. Returns the unsubscribe function. */
  subscribe(listener: SampleListener, devices: Set<string> | null = null): () => void {
    this.listeners.set(listener, devices);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(sample: MonitorSample): void {
    for (const [listener, devices] of this.listeners) {
      if (devices && !devices.has(sample.device)) continue;
      try {
        listener(sample);
      } catch {
        // one broken subscriber does not stop the others
      }
    }
  }
}
