import type { MqttClient } from 'mqtt';
import type { Outbox } from './queue.js';

/**
 * Moves messages from the outbox to the broker over one connection: up to `maxInFlight`
 * QoS 1 publishes pipelined, each acknowledged in the outbox when its PUBACK arrives. A new
 * connection starts over from the oldest unacknowledged message (duplicates, never gaps).
 */
export class Drainer {
  private client: MqttClient | undefined;
  private inFlight = 0;
  /** callbacks of an earlier connection must not count against this one */
  private generation = 0;

  constructor(
    private readonly outbox: Outbox,
    private readonly maxInFlight: number,
  ) {}

  start(client: MqttClient): void {
    this.stop();
    this.client = client;
    this.outbox.rewind();
    this.outbox.on('ready', this.pump);
    this.pump();
  }

  stop(): void {
    this.generation++;
    this.client = undefined;
    this.inFlight = 0;
    this.outbox.off('ready', this.pump);
  }

  private readonly pump = (): void => {
    const client = this.client;
    const generation = this.generation;
    while (client && this.inFlight < this.maxInFlight && client.connected) {
      const next = this.outbox.next();
      if (!next) return;
      this.inFlight++;
      const { topic, payload, qos, retain } = next.message;
      client.publish(topic, payload, { qos, retain }, (error) => {
        if (generation !== this.generation) return;
        this.inFlight--;
        // An error means the connection broke; the message stays and goes again on the next one.
        if (!error) this.outbox.ack(next.seq);
        this.pump();
      });
    }
  };
}
