/**
 * Resources that are still closing. An actor's cleanup runs synchronously when the actor
 * stops, but ending MQTT or closing a server takes time: the cleanup hands the promise here,
 * and the supervisor's `drain` (and the process exit) wait for all of them, with a bound.
 */
export class Closing {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly onError: (what: string, error: unknown) => void = () => {}) {}

  track(what: string, work: Promise<unknown>): Promise<void> {
    const settled: Promise<void> = work.then(
      () => undefined,
      (error) => this.onError(what, error),
    );
    this.pending.add(settled);
    void settled.finally(() => this.pending.delete(settled));
    return settled;
  }

  /**
   * Closes something the others still need (the embedded broker, which the link says
   * "offline" through) once everything else stopping in the same turn has closed.
   */
  trackAfterOthers(what: string, close: () => Promise<void>): void {
    let own: Promise<void> | undefined;
    const work = (async () => {
      await new Promise((resolve) => setImmediate(resolve)); // siblings' cleanups run in the same turn
      await Promise.all([...this.pending].filter((p) => p !== own));
      await close();
    })();
    own = this.track(what, work);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Resolves when everything tracked so far, and anything tracked meanwhile, is closed. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
