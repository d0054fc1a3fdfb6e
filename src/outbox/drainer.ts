import type { MqttClient } from 'mqtt';
import type { Outbox } from './queue.js';

export interface PoisonPolicy {
  /** connections ended right after the same message was sent, in a row, before it is moved aside */
  disconnects: number;
  /** "right after": the connection ended within this long of sending it */
  windowMs: number;
}

/** Told when one message has ended the connection `disconnects` times in a row, and why. */
export type OnPoison = (seq: number, reason: string) => void;

/**
 * Moves messages from the outbox to the broker over one connection: up to `maxInFlight`
 * QoS 1 publishes pipelined, each acknowledged in the outbox when its PUBACK arrives. A new
 * connection starts over from the oldest unacknowledged message (duplicates, never gaps).
 *
 * A broker answers some messages by closing the connection (a topic it refuses; AWS IoT on
 * a policy violation). Such a message would be sent first on every new connection, forever:
 * when the connection ends within `windowMs` of sending the oldest unacknowledged message,
 * that message gets a strike; at `disconnects` strikes in a row it is reported to `onPoison`.
 */
export class Drainer {
  private client: MqttClient | undefined;
  /** sent and not yet acknowledged on this connection, in send order: seq → when sent */
  private readonly inFlight = new Map<number, number>();
  /** callbacks of an earlier connection must not count against this one */
  private generation = 0;
  private strikes: { seq: number; count: number } | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly maxInFlight: number,
    private readonly poison: PoisonPolicy = { disconnects: 3, windowMs: 5000 },
    private readonly onPoison: OnPoison = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  start(client: MqttClient): void {
    this.stop();
    this.client = client;
    this.outbox.rewind();
    this.outbox.on('ready', this.pump);
    this.pump();
  }

  /** Delivery stops (paused, or the link is going): nothing is held against any message. */
  stop(): void {
    this.generation++;
    this.client = undefined;
    this.inFlight.clear();
    this.outbox.off('ready', this.pump);
  }

  /** The connection ended under us: the oldest message it was carrying may be the cause. */
  connectionLost(): void {
    const oldest = this.inFlight.entries().next().value;
    if (oldest && this.client && this.now() - oldest[1] <= this.poison.windowMs) this.strike(oldest[0]);
    this.stop();
  }

  private strike(seq: number): void {
    this.strikes = this.strikes?.seq === seq ? { seq, count: this.strikes.count + 1 } : { seq, count: 1 };
    if (this.strikes.count < this.poison.disconnects) return;
    this.strikes = undefined;
    const window = `${this.poison.windowMs / 1000} s`;
    this.onPoison(seq, `the connection ended within ${window} of sending it, ${this.poison.disconnects} times in a row`);
  }

  private readonly pump = (): void => {
    const client = this.client;
    const generation = this.generation;
    while (client && this.inFlight.size < this.maxInFlight && client.connected) {
      const next = this.outbox.next();
      if (!next) return;
      this.inFlight.set(next.seq, this.now());
      const { topic, payload, qos, retain } = next.message;
      client.publish(topic, payload, { qos, retain }, (error) => {
        if (generation !== this.generation) return;
        // An error means the connection broke; the message stays and goes again on the next one.
        if (error) return;
        this.inFlight.delete(next.seq);
        if (this.strikes?.seq === next.seq) this.strikes = undefined;
        this.outbox.ack(next.seq);
        this.pump();
      });
    }
  };
}
