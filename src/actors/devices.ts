import { resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import { fromCallback, type AnyActorRef } from 'xstate';
import { deviceMachine, type DeviceContext, type DeviceStateName } from '../../machines/device.js';
import type { HotplugEvent, RefusedParams } from '../../machines/devices.js';
import type { Closing } from '../closing.js';
import type { Config } from '../config/schema.js';
import { DeviceDetector } from '../devices/detector.js';
import { DeviceHub } from '../devices/hub.js';
import { KnownDevices } from '../devices/known.js';
import { ProfileStore } from '../devices/profile-store.js';
import { shippedProfilesDir, type Profile } from '../devices/profiles.js';
import { openSerialPort, type SerialPortLike } from '../devices/serial-port.js';
import { startUsbHotplug, type UsbHotplugStart } from '../devices/usb-hotplug.js';
import { DeviceWriter } from '../devices/writer.js';
import type { Logger } from '../log.js';
import type { Outbox } from '../outbox/queue.js';
import type { Slot } from '../slot.js';
import { commandFeedActor } from './devices/commands.js';
import { portActor } from './devices/port.js';

export interface DevicesDeps {
  config: Config;
  outbox: Slot<Outbox>;
  /** the connected MQTT client: commands come in on it, and the final states go out on it at a stop */
  session: Slot<MqttClient>;
  /** the devices concern's actor while it runs (for writes) */
  manager: () => AnyActorRef | undefined;
  closing: Closing;
  log: Logger;
  /** seams for tests: the usb package, the serial port */
  startUsb?: UsbHotplugStart;
  openPort?: (path: string, profile: Profile) => Promise<SerialPortLike>;
}

/**
 * The real actors of the devices and device charts. The data plane stays here: bytes from
 * the port go through the profile's parser straight to the outbox and to /ws subscribers;
 * the charts only hear that a port opened, closed, or sends nothing but garbage. Each open
 * port has one owner, its device's `port` actor; commands reach it as events.
 */
export function devicesActors(deps: DevicesDeps) {
  const { config, log } = deps;
  const c = config.devices;
  const hub = new DeviceHub();
  let store: ProfileStore | undefined;
  let known: KnownDevices | undefined;
  /** the last state each device announced, for the final `stopped` when the concern stops */
  const announced = new Map<string, Record<string, unknown>>();
  const topic = (id: string, kind: 'data' | 'state') => `devices/${config.thingName}/peripherals/${id}/${kind}`;
  const profile = (name: string) => store?.profiles.get(name);

  const enqueue = (topicName: string, body: Record<string, unknown>, qos: 0 | 1, retain: boolean, id?: string): boolean => {
    const outbox = deps.outbox.current;
    if (!outbox) return false;
    outbox.enqueue({ topic: topicName, payload: Buffer.from(JSON.stringify(body)), qos, retain }).catch(() => {
      if (id) hub.countersOf(id).dropped++;
    });
    return true;
  };
  const send = (id: string, kind: 'data' | 'state', body: Record<string, unknown>, qos: 0 | 1, retain: boolean) => enqueue(topic(id, kind), body, qos, retain, id);
  const writer = new DeviceWriter({ manager: deps.manager, profile, hub, log });

  const hotplug = fromCallback<HotplugEvent, void>(({ sendBack }) => {
    const profilesDir = c.profilesDir ?? shippedProfilesDir;
    let detector: DeviceDetector | undefined;
    let stopped = false;
    store = new ProfileStore(
      profilesDir,
      () => {
        log.info({ dir: profilesDir, profiles: [...store!.profiles.keys()] }, 'profiles reloaded');
        void detector?.rematch();
      },
      (errors) => {
        for (const e of errors) log.error({ file: e.file, err: e.message }, 'bad profile: left out');
      },
    );
    const current = store;
    void (async () => {
      await current.open();
      known ??= await KnownDevices.open(config.stateDir).catch((error) => {
        log.warn({ err: String(error) }, 'cannot open the known devices file; not remembered');
        return undefined;
      });
      if (stopped) return current.close();
      for (const port of c.ports) {
        if (!current.profiles.has(port.profile)) log.error({ path: port.path, profile: port.profile }, 'devices.ports: no such profile; port not opened');
      }
      detector = new DeviceDetector({
        roots: { sys: c.sysfsRoot, dev: c.devRoot },
        mode: c.hotplug,
        pollMs: Math.round(c.pollIntervalSeconds * 1000),
        ports: c.ports,
        profiles: () => current.profiles,
        // The usb package's events describe the real bus: with sysfs elsewhere they would not match it.
        startUsb: resolve(c.sysfsRoot) === '/sys' ? (deps.startUsb ?? startUsbHotplug) : () => ({ unavailable: `devices.sysfsRoot is ${c.sysfsRoot}, not /sys` }),
        onAttach: (device) => {
          const fields = { device: device.id, path: device.path, profile: device.profile, vendorId: device.vendorId, productId: device.productId, serial: device.serial };
          if (device.note) log.warn({ ...fields, note: device.note }, 'device attached under another id');
          else log.info(fields, device.profile ? 'device attached' : 'device attached, no profile matches');
          known?.seen(device, Date.now());
          sendBack({ type: 'devices.attached', device });
        },
        onDetach: (id) => {
          // the chart goes to gone at once, which stops its port actor and closes the port:
          // serialport itself may not notice an unplugged device for minutes
          log.info({ device: id }, 'device detached');
          known?.left(id, Date.now());
          sendBack({ type: 'devices.detached', id, at: Date.now() });
        },
        onSource: (source, problem) => {
          log.info({ source, problem }, 'watching for devices');
          sendBack({ type: 'devices.source', source, problem });
        },
        onError: (error) => log.warn({ err: String(error) }, 'device scan failed'),
      });
      if (stopped) return;
      await detector.start();
    })().catch((error) => log.error({ err: String(error) }, 'device detection did not start'));
    return () => {
      stopped = true;
      detector?.stop();
      current.close();
      announceStopped();
      if (known) deps.closing.track('known devices', known.close());
    };
  });

  /**
   * The concern stops (the agent stops): every device still announced gets a final retained
   * `stopped` state, through the outbox (still open: the devices concern stops before it) and,
   * while connected, straight on the session too, so that the broker holds it before the
   * link says offline and ends (a clean end waits for QoS 1 publishes in flight).
   */
  const announceStopped = () => {
    for (const [id, last] of announced) {
      const body = { ...last, state: 'stopped' satisfies DeviceStateName, ts: Date.now() };
      send(id, 'state', body, 1, true);
      const client = deps.session.current;
      if (client?.connected) client.publish(topic(id, 'state'), JSON.stringify(body), { qos: 1, retain: true }, () => {});
    }
    if (announced.size > 0) log.info({ devices: [...announced.keys()] }, 'devices stopped');
    announced.clear();
  };

  const device = deviceMachine.provide({
    actors: {
      port: portActor({ profile, open: deps.openPort ?? openSerialPort, hub, publish: (id, reading, qos) => send(id, 'data', reading, qos, false), closing: deps.closing, log }),
    },
    actions: {
      announce: ({ context }, { state }: { state: DeviceStateName }) => announce(context, state),
    },
  });

  const announce = (context: DeviceContext, state: DeviceStateName) => {
    const body: Record<string, unknown> = { state, id: context.id, profile: context.profile, path: context.path, reconnects: context.reconnects, ts: Date.now() };
    if (context.lastError && state !== 'streaming') body.error = context.lastError.message;
    send(context.id, 'state', body, 1, true);
    if (state === 'gone') announced.delete(context.id);
    else announced.set(context.id, body);
    if (state !== 'detected') log.info({ device: context.id, state, err: state === 'reconnecting' ? context.lastError?.message : undefined }, 'device state');
  };

  const commands = commandFeedActor({
    thingName: config.thingName,
    session: deps.session,
    writer,
    answer: (topicName, result) => void enqueue(topicName, result, 1, false),
    log,
  });

  const refused = (_: unknown, params: RefusedParams) => {
    if (params) log.warn({ device: params.id, path: params.path, reason: params.reason }, 'device refused: not opened');
  };

  return {
    hub,
    refused,
    profiles: () => store,
    known: () => known?.all() ?? [],
    writer,
    actors: { hotplug, device, commands },
  };
}
