/**
 * QoS 1 acknowledgements held until what they acknowledge is committed, sent in the order the
 * messages came (MQTT 3.1.1 §4.6: PUBACKs go in the order of the PUBLISHes). One queue per
 * connection: `reset` forgets everything held when the connection drops (the broker sends
 * those messages again on the persistent session), so a late commit never acknowledges on
 * a newer connection a packet id it did not receive there.
 */
export class AckQueue {
  private held: Array<{ messageId: number; ready: boolean; then?: () => void }> = [];
  private generation = 0;

  constructor(private readonly send: (messageId: number) => void) {}

  get size(): number {
    return this.held.length;
  }

  /** Holds the PUBACK of `messageId`; call the returned function when it may go. `then` runs once it went. */
  hold(messageId: number, then?: () => void): () => void {
    const entry = { messageId, ready: false, then };
    const generation = this.generation;
    this.held.push(entry);
    return () => {
      if (generation !== this.generation) return;
      entry.ready = true;
      this.flush();
    };
  }

  /** The connection dropped: nothing held is sent, and the waiters are released. */
  reset(): void {
    this.generation++;
    const dropped = this.held;
    this.held = [];
    for (const entry of dropped) entry.then?.();
  }

  private flush(): void {
    while (this.held[0]?.ready) {
      const entry = this.held.shift()!;
      this.send(entry.messageId);
      entry.then?.();
    }
  }
}
