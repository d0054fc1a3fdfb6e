import { resolve } from 'node:path';
import { fromCallback } from 'xstate';
import type { HotplugEvent, PresentDevice } from '../../../machines/devices.js';
import type { Closing } from '../../closing.js';
import type { Config } from '../../config/schema.js';
import { DeviceDetector } from '../../devices/detector.js';
import { KnownDevices } from '../../devices/known.js';
import { ProfileStore } from '../../devices/profile-store.js';
import { shippedProfilesDir } from '../../devices/profiles.js';
import type { UsbHotplugStart } from '../../devices/usb-hotplug.js';
import type { Logger } from '../../log.js';
import type { Slot } from '../../slot.js';

export interface HotplugPorts {
  devices: Config['devices'];
  stateDir: string;
  /** the profiles while the concern runs: the port actors, the writer and the API read them */
  profiles: Slot<ProfileStore>;
  /** every device ever seen (devices.json), opened on the first start */
  known: Slot<KnownDevices>;
  /** the usb package's hotplug (a seam for tests) */
  startUsb: UsbHotplugStart;
  closing: Closing;
  log: Logger;
  now: () => number;
  /** the concern stops (called once, from the cleanup) */
  onStop: () => void;
}

type Send = (event: HotplugEvent) => void;

/**
 * The `hotplug` actor of the devices chart: it loads the profiles (and reloads them when a
 * file changes), then watches for serial devices (usb events, sysfs polling, the ports fixed
 * by config) and reports each one present, matched against the profiles, and each one gone.
 */
export function hotplugActor(ports: HotplugPorts) {
  return fromCallback<HotplugEvent, void>(({ sendBack }) => {
    let detector: DeviceDetector | undefined;
    let stopped = false;
    const store = openProfiles(ports, () => void detector?.rematch());
    ports.profiles.set(store);
    void (async () => {
      await store.open();
      if (!ports.known.current) {
        const known = await KnownDevices.open(ports.stateDir).catch(
          (error) => void ports.log.warn({ err: String(error) }, 'cannot open the known devices file; not remembered'),
        );
        if (known) ports.known.set(known);
      }
      if (stopped) return;
      for (const port of ports.devices.ports) {
        if (!store.profiles.has(port.profile)) ports.log.error({ path: port.path, profile: port.profile }, 'devices.ports: no such profile; port not opened');
      }
      detector = startDetector(ports, store, sendBack);
      await detector.start();
    })().catch((error) => ports.log.error({ err: String(error) }, 'device detection did not start'));
    return () => {
      stopped = true;
      detector?.stop();
      store.close();
      ports.profiles.clear(store);
      ports.onStop();
      const known = ports.known.current;
      if (known) ports.closing.track('known devices', known.close());
    };
  });
}

function openProfiles(ports: HotplugPorts, onReload: () => void): ProfileStore {
  const dir = ports.devices.profilesDir ?? shippedProfilesDir;
  const store: ProfileStore = new ProfileStore(
    dir,
    () => {
      ports.log.info({ dir, profiles: [...store.profiles.keys()] }, 'profiles reloaded');
      onReload();
    },
    (errors) => {
      for (const e of errors) ports.log.error({ file: e.file, err: e.message }, 'bad profile: left out');
    },
  );
  return store;
}

function startDetector(ports: HotplugPorts, store: ProfileStore, send: Send): DeviceDetector {
  const c = ports.devices;
  const { log, now } = ports;
  return new DeviceDetector({
    roots: { sys: c.sysfsRoot, dev: c.devRoot },
    mode: c.hotplug,
    pollMs: Math.round(c.pollIntervalSeconds * 1000),
    ports: c.ports,
    profiles: () => store.profiles,
    // The usb package's events describe the real bus: with sysfs elsewhere they would not match it.
    startUsb: resolve(c.sysfsRoot) === '/sys' ? ports.startUsb : () => ({ unavailable: `devices.sysfsRoot is ${c.sysfsRoot}, not /sys` }),
    onAttach: (device) => attached(ports, device, send),
    onDetach: (id) => {
      // the chart goes to gone at once, which stops its port actor and closes the port:
      // serialport itself may not notice an unplugged device for minutes
      log.info({ device: id }, 'device detached');
      ports.known.current?.left(id, now());
      send({ type: 'devices.detached', id, at: now() });
    },
    onSource: (source, problem) => {
      log.info({ source, problem }, 'watching for devices');
      send({ type: 'devices.source', source, problem });
    },
    onError: (error) => log.warn({ err: String(error) }, 'device scan failed'),
  });
}

function attached(ports: HotplugPorts, device: PresentDevice, send: Send): void {
  const fields = {
    device: device.id,
    path: device.path,
    profile: device.profile,
    vendorId: device.vendorId,
    productId: device.productId,
    serial: device.serial,
  };
  if (device.note) ports.log.warn({ ...fields, note: device.note }, 'device attached under another id');
  else ports.log.info(fields, device.profile ? 'device attached' : 'device attached, no profile matches');
  ports.known.current?.seen(device, ports.now());
  send({ type: 'devices.attached', device });
}
