import type { MqttClient } from 'mqtt';
import type { AnyActorRef } from 'xstate';
import { deviceMachine } from '../../../machines/device.js';
import { devicesMachine } from '../../../machines/devices.js';
import type { Closing } from '../../closing.js';
import type { Config } from '../../config/schema.js';
import { DeviceAnnouncer } from '../../devices/announcer.js';
import { DeviceHub } from '../../devices/hub.js';
import { refusalLog } from '../../devices/refusal-log.js';
import type { KnownDevices } from '../../devices/known.js';
import type { ProfileStore } from '../../devices/profile-store.js';
import type { Profile } from '../../devices/profiles.js';
import { openSerialPort, type SerialPortLike } from '../../devices/serial-port.js';
import { startUsbHotplug, type UsbHotplugStart } from '../../devices/usb-hotplug.js';
import { DeviceWriter } from '../../devices/writer.js';
import type { Logger } from '../../log.js';
import type { ActorChanges } from '../../observe.js';
import type { Outbox } from '../../outbox/queue.js';
import { Slot } from '../../slot.js';
import { commandFeedActor } from './commands.js';
import { hotplugActor } from './hotplug.js';
import { portActor } from './port.js';

export interface DevicesDeps {
  config: Config;
  outbox: Slot<Outbox>;
  /** the connected MQTT client: commands come in on it, and the final states go out on it at a stop */
  session: Slot<MqttClient>;
  /** every snapshot change in the tree: device states are announced from it */
  changes: ActorChanges;
  /** the devices concern's actor while it runs (for writes) */
  manager: () => AnyActorRef | undefined;
  closing: Closing;
  log: Logger;
  now?: () => number;
  /** seams for tests: the usb package, the serial port */
  startUsb?: UsbHotplugStart;
  openPort?: (path: string, profile: Profile) => Promise<SerialPortLike>;
}

/**
 * The devices concern's real actors, one a file, each given its ports, provided to the
 * devices and device charts. The data plane stays beside the charts: bytes from the port go
 * through the profile's parser straight to the outbox and to /ws subscribers (the hub); the
 * charts only hear that a port opened, closed, or sends nothing but garbage. The charts do
 * no I/O: their state changes are announced, and their refusals logged, by observers of
 * their snapshots (DeviceAnnouncer, refusalLog).
 */
export function devicesActors(deps: DevicesDeps) {
  const { config, log, closing } = deps;
  const now = deps.now ?? Date.now;
  const hub = new DeviceHub();
  const profiles = new Slot<ProfileStore>();
  const known = new Slot<KnownDevices>();
  const profile = (name: string) => profiles.current?.profiles.get(name);
  /** Hands a message to the outbox; false when it is closed. A refused write counts as dropped. */
  const enqueue = (topic: string, body: Record<string, unknown>, qos: 0 | 1, retain: boolean, device?: string): boolean => {
    const outbox = deps.outbox.current;
    if (!outbox) return false;
    outbox.enqueue({ topic, payload: Buffer.from(JSON.stringify(body)), qos, retain }).catch(() => {
      if (device) hub.countersOf(device).dropped++;
    });
    return true;
  };
  const announcer = new DeviceAnnouncer({
    thingName: config.thingName,
    enqueue: (device, topic, body) => void enqueue(topic, body, 1, true, device),
    session: deps.session,
    log,
    now,
  });
  deps.changes.subscribe(announcer.follow);
  deps.changes.subscribe(refusalLog(log));
  const writer = new DeviceWriter({ manager: deps.manager, profile, hub, log });
  const dataTopic = (id: string) => `devices/${config.thingName}/peripherals/${id}/data`;

  const device = deviceMachine.provide({
    actors: {
      port: portActor({
        profile,
        open: deps.openPort ?? openSerialPort,
        hub,
        publish: (id, reading, qos) => enqueue(dataTopic(id), reading, qos, false, id),
        closing,
        log,
        now,
      }),
    },
  });
  const hotplug = hotplugActor({
    devices: config.devices,
    stateDir: config.stateDir,
    profiles,
    known,
    startUsb: deps.startUsb ?? startUsbHotplug,
    closing,
    log,
    now,
    onStop: () => announcer.stopped(),
  });
  const commands = commandFeedActor({
    thingName: config.thingName,
    session: deps.session,
    writer,
    answer: (topic, result) => void enqueue(topic, result, 1, false),
    log,
    now,
  });
  const machine = devicesMachine.provide({ actors: { hotplug, commands, device } });

  return { machine, hub, writer, profiles: () => profiles.current, known: () => known.current?.all() ?? [] };
}
