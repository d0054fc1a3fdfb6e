import { Topic } from './events.js';

/**
 * A value that comes and goes while the process runs (the connected MQTT client, the open
 * outbox), shared between an actor that owns it and the data plane that uses it.
 */
export class Slot<T> {
  private value: T | undefined;
  private readonly changes = new Topic<T | undefined>();

  get current(): T | undefined {
    return this.value;
  }

  set(value: T): void {
    this.value = value;
    this.notify();
  }

  /** Empties the slot, but only if it still holds `value` (a newer owner may have moved in). */
  clear(value?: T): void {
    if (this.value === undefined || (value !== undefined && this.value !== value)) return;
    this.value = undefined;
    this.notify();
  }

  /** Calls `listener` with every change; returns the unsubscribe function. */
  subscribe(listener: (value: T | undefined) => void): () => void {
    return this.changes.subscribe(listener);
  }

  private notify(): void {
    this.changes.publish(this.value);
  }
}
