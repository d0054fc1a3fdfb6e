/**
 * Counts the retained messages the embedded broker keeps (aedes stores them in memory without
 * a bound), so a client cannot fill the agent's memory with them. A publish is weighed before
 * it is stored: a new or larger retained message past either bound is refused; an empty one
 * deletes. The agent's own are always taken (counted, never refused): its status and notices
 * must not be crowded out by a local client.
 */
export class RetainedLedger {
  private readonly sizes = new Map<string, number>();
  private totalBytes = 0;

  constructor(private readonly limits: { maxMessages: number; maxBytes: number }) {}

  /** Weighs one retained publish; returns false (and changes nothing) when it does not fit. */
  admit(topic: string, payloadBytes: number, always: boolean): boolean {
    const previous = this.sizes.get(topic);
    if (payloadBytes === 0) {
      if (previous !== undefined) this.remove(topic, previous);
      return true;
    }
    const size = Buffer.byteLength(topic) + payloadBytes;
    const count = this.sizes.size + (previous === undefined ? 1 : 0);
    const bytes = this.totalBytes - (previous ?? 0) + size;
    if (!always && (count > this.limits.maxMessages || bytes > this.limits.maxBytes)) return false;
    this.sizes.set(topic, size);
    this.totalBytes = bytes;
    return true;
  }

  get messages(): number {
    return this.sizes.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  private remove(topic: string, size: number): void {
    this.sizes.delete(topic);
    this.totalBytes -= size;
  }
}
