import { resolve } from 'node:path';
import { fromCallback, fromPromise } from 'xstate';
import { deviceMachine, type DeviceStateName, type PortRef, type StreamEvent } from '../../machines/device.js';
import type { HotplugEvent, RefusedParams } from '../../machines/devices.js';
import { toFailure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Config } from '../config/schema.js';
import { DeviceDetector } from '../devices/detector.js';
import { DeviceHub } from '../devices/hub.js';
import { KnownDevices } from '../devices/known.js';
import { ProfileStore } from '../devices/profile-store.js';
import { shippedProfilesDir, type Profile } from '../devices/profiles.js';
import { createParser } from '../devices/protocols.js';
import { closeSerialPort, openSerialPort, type SerialPortLike } from '../devices/serial-port.js';
import { startUsbHotplug, type UsbHotplugStart } from '../devices/usb-hotplug.js';
import type { Logger } from '../log.js';
import type { Outbox } from '../outbox/queue.js';
import type { Slot } from '../slot.js';

export interface DevicesDeps {
  config: Config;
  outbox: Slot<Outbox>;
  closing: Closing;
  log: Logger;
  /** seams for tests: the usb package, the serial port */
  startUsb?: UsbHotplugStart;
  openPort?: (path: string, profile: Profile) => Promise<SerialPortLike>;
}

/**
 * The real actors of the devices and device charts. The data plane stays here: bytes from
 * the port go through the profile's parser straight to the outbox and to /ws subscribers;
 * the charts only hear that a port opened, closed, or sends nothing but garbage.
 */
export function devicesActors(deps: DevicesDeps) {
  const { config, log } = deps;
  const c = config.devices;
  const hub = new DeviceHub();
  const open = new Map<string, { port: SerialPortLike; profile: Profile }>();
  let store: ProfileStore | undefined;
  let known: KnownDevices | undefined;
  const topic = (id: string, kind: 'data' | 'state') => `devices/${config.thingName}/peripherals/${id}/${kind}`;
  const openPort = deps.openPort ?? openSerialPort;

  const send = (id: string, kind: 'data' | 'state', body: Record<string, unknown>, qos: 0 | 1, retain: boolean): boolean => {
    const outbox = deps.outbox.current;
    if (!outbox) return false;
    outbox.enqueue({ topic: topic(id, kind), payload: Buffer.from(JSON.stringify(body)), qos, retain }).catch(() => {
      hub.countersOf(id).dropped++;
    });
    return true;
  };

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
          log.info({ device: id }, 'device detached');
          // close at once: serialport may not notice an unplugged device for minutes
          const entry = open.get(id);
          if (entry) void closeSerialPort(entry.port);
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
      if (known) deps.closing.track('known devices', known.close());
    };
  });

  const device = deviceMachine.provide({
    actors: {
      openPort: fromPromise<void, PortRef>(async ({ input, signal }) => {
        const profile = store?.profiles.get(input.profile);
        if (!profile) throw Object.assign(new Error(`profile "${input.profile}" is not loaded`), { code: 'no_profile' });
        const port = await openPort(input.path, profile);
        if (signal.aborted) {
          void closeSerialPort(port);
          return;
        }
        open.set(input.id, { port, profile });
        log.info({ device: input.id, path: input.path, baudRate: profile.serial.baudRate, protocol: profile.protocol.type }, 'port open');
      }),
      stream: fromCallback<StreamEvent, PortRef>(({ input, sendBack }) => {
        const entry = open.get(input.id);
        if (!entry) {
          sendBack({ type: 'device.lost', error: { code: 'not_open', message: 'the port is not open' } });
          return;
        }
        const { port, profile } = entry;
        const counters = hub.countersOf(input.id);
        const parser = createParser(profile.protocol);
        const qos = profile.publish.qos;
        let badInARow = 0;
        let failing = false;
        const onData = (chunk: Buffer) => {
          counters.bytes += chunk.length;
          // Live subscribers get every reading of this read first; the outbox takes them after.
          const queued: Array<Record<string, unknown>> = [];
          parser.push(chunk, (frame) => {
            if (!frame.ok) {
              counters.errors++;
              counters.lastMalformed = frame.error;
              if (++badInARow >= profile.failing.malformedInARow && !failing) {
                failing = true;
                sendBack({ type: 'device.garbage' });
              }
              return;
            }
            badInARow = 0;
            if (failing) {
              failing = false;
              sendBack({ type: 'device.recovered' });
            }
            counters.frames++;
            const ts = Date.now();
            counters.lastFrameAt = ts;
            const reading: Record<string, unknown> = frame.data === undefined ? { line: frame.line, ts } : { line: frame.line, ts, data: frame.data };
            hub.publish(input.id, reading);
            queued.push(reading);
          });
          for (const reading of queued) if (!send(input.id, 'data', reading, qos, false)) counters.dropped++;
        };
        const onClose = (error?: Error | null) => sendBack({ type: 'device.lost', error: toFailure(error ?? { code: 'closed', message: 'the port closed' }, 'closed') });
        const onError = (error: Error) => log.warn({ device: input.id, err: error.message }, 'port error');
        port.on('data', onData);
        port.on('close', onClose);
        port.on('error', onError);
        return () => {
          port.off('data', onData);
          port.off('close', onClose);
          port.off('error', onError);
          if (open.get(input.id)?.port === port) open.delete(input.id);
          deps.closing.track(`port ${input.path}`, closeSerialPort(port));
        };
      }),
    },
    actions: {
      announce: ({ context }, { state }: { state: DeviceStateName }) => {
        const body: Record<string, unknown> = { state, id: context.id, profile: context.profile, path: context.path, reconnects: context.reconnects, ts: Date.now() };
        if (context.lastError && state !== 'streaming') body.error = context.lastError.message;
        send(context.id, 'state', body, 1, true);
        if (state !== 'detected') log.info({ device: context.id, state, err: state === 'reconnecting' ? context.lastError?.message : undefined }, 'device state');
      },
    },
  });

  const refused = (_: unknown, params: RefusedParams) => {
    if (params) log.warn({ device: params.id, path: params.path, reason: params.reason }, 'device refused: not opened');
  };

  return {
    hub,
    refused,
    profiles: () => store,
    known: () => known?.all() ?? [],
    actors: { hotplug, device },
  };
}
