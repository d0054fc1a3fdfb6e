import type { MqttClient } from 'mqtt';
import type { AnyActorRef, SnapshotFrom } from 'xstate';
import { deviceStateName, type DeviceContext, type deviceMachine, type DeviceStateName } from '../../machines/device.js';
import type { Logger } from '../log.js';
import type { Slot } from '../slot.js';

export interface AnnouncerPorts {
  thingName: string;
  /** hands a retained QoS 1 state message to the outbox */
  enqueue: (device: string, topic: string, body: Record<string, unknown>) => void;
  /** the connected MQTT client, for the final states at a stop */
  session: Slot<MqttClient>;
  log: Logger;
  now: () => number;
}

type DeviceSnapshot = SnapshotFrom<typeof deviceMachine>;

/** What was last announced for a device: by which actor, in which state, with which body. */
interface Announced {
  ref: AnyActorRef;
  state: DeviceStateName;
  body: Record<string, unknown>;
}

/**
 * The one place device states are announced: the retained `devices/<thing>/peripherals/<id>/state`
 * message, published on every change of a device actor's state. It follows the device
 * actors' snapshots (the inspection stream), so the charts announce nothing themselves. A new
 * device actor is announced `detected` first; `gone` is the last word on a device, and a
 * device still present when the concern stops gets a final `stopped`.
 */
export class DeviceAnnouncer {
  private readonly announced = new Map<string, Announced>();

  constructor(private readonly ports: AnnouncerPorts) {}

  /** A snapshot change of any actor in the tree (ActorChanges' listener). */
  readonly follow = (ref: AnyActorRef): void => {
    if (!ref.id.startsWith('device:')) return;
    const snap = ref.getSnapshot() as DeviceSnapshot;
    if (snap.status !== 'active' && snap.status !== 'done') return;
    const state = deviceStateName(snap.value);
    const before = this.announced.get(snap.context.id);
    if (before?.ref !== ref) this.announce(ref, snap.context, 'detected');
    else if (before.state === state) return;
    if (state !== 'detected') this.announce(ref, snap.context, state);
  };

  /** The concern stops: every device still announced gets a final retained `stopped`, through
   * the outbox and, while connected, straight on the session too, so that the broker holds it
   * before the link says offline and ends (a clean end waits for QoS 1 publishes in flight). */
  stopped(): void {
    for (const [id, last] of this.announced) {
      const body = { ...last.body, state: 'stopped' satisfies DeviceStateName, ts: this.ports.now() };
      this.ports.enqueue(id, this.topic(id), body);
      const client = this.ports.session.current;
      if (client?.connected) client.publish(this.topic(id), JSON.stringify(body), { qos: 1, retain: true }, () => {});
    }
    if (this.announced.size > 0) this.ports.log.info({ devices: [...this.announced.keys()] }, 'devices stopped');
    this.announced.clear();
  }

  private announce(ref: AnyActorRef, context: DeviceContext, state: DeviceStateName): void {
    const body: Record<string, unknown> = {
      state,
      id: context.id,
      profile: context.profile,
      path: context.path,
      reconnects: context.reconnects,
      ts: this.ports.now(),
    };
    if (context.lastError && state !== 'streaming') body.error = context.lastError.message;
    this.ports.enqueue(context.id, this.topic(context.id), body);
    if (state === 'gone') this.announced.delete(context.id);
    else this.announced.set(context.id, { ref, state, body });
    if (state !== 'detected')
      this.ports.log.info({ device: context.id, state, err: state === 'reconnecting' ? context.lastError?.message : undefined }, 'device state');
  }

  private topic(id: string): string {
    return `devices/${this.ports.thingName}/peripherals/${id}/state`;
  }
}
