/**
 * The one way events pass beside the charts (the MQTT session coming and going, actor changes,
 * device readings, monitoring samples): a typed fan-out to listeners, each optionally limited
 * to a set of keys such as device ids. One broken listener never stops the others.
 */
export class Topic<T> {
  private readonly listeners = new Map<(event: T) => void, ReadonlySet<string> | null>();

  /**
   * @param keyOf the key a listener's set is matched against (absent: every listener gets every event)
   * @param onError told when a listener throws
   */
  constructor(
    private readonly keyOf?: (event: T) => string,
    private readonly onError?: (error: unknown) => void,
  ) {}

  /** `keys` null: every event. Returns the unsubscribe function. */
  subscribe(listener: (event: T) => void, keys: ReadonlySet<string> | null = null): () => void {
    // one entry per subscription, even when the same function subscribes twice
    const own = (event: T) => listener(event);
    this.listeners.set(own, keys);
    return () => this.listeners.delete(own);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(event: T): void {
    if (this.listeners.size === 0) return;
    const key = this.keyOf?.(event);
    for (const [listener, keys] of this.listeners) {
      if (keys && key !== undefined && !keys.has(key)) continue;
      try {
        listener(event);
      } catch (error) {
        this.onError?.(error);
      }
    }
  }
}
