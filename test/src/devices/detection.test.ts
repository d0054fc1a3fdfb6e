import { rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresentDevice } from '../../../machines/devices.js';
import { DeviceDetector, type DetectorOptions } from '../../../src/devices/detector.js';
import { loadProfiles, shippedProfilesDir, type Profile } from '../../../src/devices/profiles.js';
import { scanUsbTtys, usbDeviceId } from '../../../src/devices/sysfs.js';
import { startUsbHotplug } from '../../../src/devices/usb-hotplug.js';
import { waitFor } from '../../support/ports.js';
import { FakeSysfs } from '../../support/sysfs.js';

const trees: FakeSysfs[] = [];
const detectors: DeviceDetector[] = [];
afterEach(() => {
  while (detectors.length) detectors.pop()!.stop();
  while (trees.length) trees.pop()!.remove();
});
const tree = () => {
  const t = new FakeSysfs();
  trees.push(t);
  return t;
};

const ftdi = { name: 'ttyUSB0', vendorId: '0403', productId: '6001', serial: 'A50285BI', manufacturer: 'FTDI', product: 'FT232R USB UART', busPath: '1-1.2' };

describe('sysfs', () => {
  it('finds USB ttys with their ids and strings, through usb-serial and cdc-acm layouts, and skips the rest', async () => {
    const t = tree();
    t.plug(ftdi);
    t.plug({ name: 'ttyACM0', vendorId: '2341', productId: '0043', serial: '85736323838351F0A1C1', busPath: '1-3', driver: 'acm' });
    t.plug({ name: 'ttyUSB1', vendorId: '1a86', productId: '7523', busPath: '1-4' }); // a CH340 clone: no serial number
    t.plug({ name: 'ttyUSB2', vendorId: '10c4', productId: 'ea70', serial: '00A1', busPath: '1-5', interface: 1 });
    const found = await scanUsbTtys({ sys: t.sys, dev: '/dev' });
    expect(found.map((f) => [f.name, f.id, f.path, f.interface])).toEqual([
      ['ttyACM0', 'usb-2341-0043-85736323838351F0A1C1', '/dev/ttyACM0', 0],
      ['ttyUSB0', 'usb-0403-6001-A50285BI', '/dev/ttyUSB0', 0],
      ['ttyUSB1', 'usb-1a86-7523-at-1-4', '/dev/ttyUSB1', 0],
      ['ttyUSB2', 'usb-10c4-ea70-00A1-if01', '/dev/ttyUSB2', 1],
    ]);
    expect(found[1]).toMatchObject({ vendorId: '0403', productId: '6001', manufacturer: 'FTDI', product: 'FT232R USB UART', busPath: '1-1.2' });
  });

  it('device ids are topic-safe whatever the serial number holds', () => {
    expect(usbDeviceId({ vendorId: '0403', productId: '6001', serial: 'a/b+#c d', busPath: '1-1' })).toBe('usb-0403-6001-a_b_c_d');
    expect(usbDeviceId({ vendorId: '0403', productId: '6001', serial: '   ', busPath: '2-1.4' })).toBe('usb-0403-6001-at-2-1_4');
  });

  it('a device read half-way through its removal (no idProduct any more) is not a device', async () => {
    const t = tree();
    t.plug(ftdi);
    rmSync(join(t.sys, 'devices/pci0000:00/0000:00:14.0/usb1', ftdi.busPath, 'idProduct'));
    expect(await scanUsbTtys({ sys: t.sys, dev: '/dev' })).toEqual([]);
  });

  it('an empty or missing sysfs is no devices, not an error', async () => {
    expect(await scanUsbTtys({ sys: '/nonexistent', dev: '/dev' })).toEqual([]);
  });
});

describe('the usb package behind its seam', () => {
  it('loads, and either watches a real bus or says why not (this machine has none)', () => {
    const started = startUsbHotplug(() => {});
    if ('watch' in started) started.watch.stop();
    else expect(started.unavailable).toMatch(/libusb|usb package/);
  });
});

async function detector(t: FakeSysfs, overrides: Partial<DetectorOptions> = {}) {
  let profiles: Map<string, Profile> = (await loadProfiles(shippedProfilesDir)).profiles;
  const events: string[] = [];
  const attached: PresentDevice[] = [];
  const sources: Array<[string, string | null]> = [];
  const d = new DeviceDetector({
    roots: { sys: t.sys, dev: t.dev },
    mode: 'auto',
    pollMs: 50,
    ports: [],
    profiles: () => profiles,
    startUsb: () => ({ unavailable: 'libusb sees no USB bus (no root hub)' }),
    onAttach: (device) => (attached.push(device), events.push(`+${device.id}:${device.profile}`)),
    onDetach: (id) => events.push(`-${id}`),
    onSource: (source, problem) => sources.push([source, problem]),
    onError: (error) => events.push(`error ${String(error)}`),
    ...overrides,
  });
  detectors.push(d);
  return { d, events, attached, sources, setProfiles: (p: Map<string, Profile>) => (profiles = p) };
}

describe('device detection', () => {
  it('finds devices present at start, then polls sysfs for attach and detach when usb hotplug is unavailable', async () => {
    const t = tree();
    t.plug(ftdi);
    const x = await detector(t);
    await x.d.start();
    expect(x.sources).toEqual([['sysfs polling every 50 ms (usb hotplug unavailable: libusb sees no USB bus (no root hub))', null]]);
    expect(x.events).toEqual(['+usb-0403-6001-A50285BI:ftdi-ft232r']);
    expect(x.attached[0]).toMatchObject({ path: `${t.dev}/ttyUSB0`, source: 'usb', vendorId: '0403', productId: '6001', serial: 'A50285BI' });
    t.plug({ name: 'ttyUSB1', vendorId: '1546', productId: '01a8', busPath: '1-2' });
    await waitFor(() => x.events.length === 2, 'the u-blox to be seen');
    expect(x.events[1]).toBe('+usb-1546-01a8-at-1-2:ublox-gps');
    t.unplug('ttyUSB0', '1-1.2');
    await waitFor(() => x.events.length === 3, 'the FTDI to go');
    expect(x.events[2]).toBe('-usb-0403-6001-A50285BI');
  });

  it('with usb hotplug, an event triggers a look at sysfs (no polling); unmatched devices are reported without a profile', async () => {
    const t = tree();
    let fire = () => {};
    let stopped = 0;
    const x = await detector(t, { startUsb: (onChange) => ((fire = onChange), { watch: { stop: () => void stopped++ } }) });
    await x.d.start();
    expect(x.sources[0][0]).toMatch(/^usb hotplug/);
    expect(x.events).toEqual([]);
    t.plug({ name: 'ttyUSB0', vendorId: 'abcd', productId: '0001', serial: 'Z1' });
    await new Promise((r) => setTimeout(r, 200));
    expect(x.events).toEqual([]); // nothing polls
    fire();
    await waitFor(() => x.events.length === 1, 'the event to trigger a scan');
    expect(x.events).toEqual(['+usb-abcd-0001-Z1:null']);
    x.d.stop();
    expect(stopped).toBe(1);
  });

  it('usb mode without usb hotplug says so, and still works by polling', async () => {
    const t = tree();
    const x = await detector(t, { mode: 'usb' });
    await x.d.start();
    expect(x.sources[0][1]).toMatch(/usb hotplug unavailable .*polling sysfs instead/);
  });

  it('fixed ports are present from the start with their named profile; an unknown profile leaves them unmatched', async () => {
    const t = tree();
    const x = await detector(t, {
      mode: 'off',
      ports: [
        { path: '/dev/ttyAMA0', profile: 'gps-uart' },
        { path: '/tmp/x/pty', profile: 'nope', id: 'sensor-1' },
      ],
    });
    await x.d.start();
    expect(x.sources[0][0]).toBe('config only');
    expect(x.events).toEqual(['+port-ttyAMA0:gps-uart', '+sensor-1:null']);
  });

  it('a USB tty that devices.ports names (by any path) is opened once, as the configured port', async () => {
    const t = tree();
    const target = join(t.root, 'node');
    writeFileSync(target, '');
    t.plug({ ...ftdi, target });
    symlinkSync(target, join(t.root, 'by-id-link'));
    const x = await detector(t, { mode: 'sysfs', ports: [{ path: join(t.root, 'by-id-link'), profile: 'gps-uart', id: 'gps' }] });
    await x.d.start();
    expect(x.events).toEqual(['+gps:gps-uart']);
  });

  it('two adapters with the same serial number each get their own id, from their USB port, the same on every start', async () => {
    const t = tree();
    const twin = (name: string, busPath: string) => ({
      name,
      vendorId: '10c4',
      productId: 'ea60',
      serial: '0001',
      product: 'CP2102 USB to UART Bridge Controller',
      busPath,
    });
    t.plug(twin('ttyUSB0', '1-1.2'));
    t.plug(twin('ttyUSB1', '1-1.3'));
    for (let start = 0; start < 2; start++) {
      const x = await detector(t, { mode: 'sysfs' });
      await x.d.start();
      expect(x.events).toEqual(['+usb-10c4-ea60-0001-at-1-1_2:silabs-cp210x', '+usb-10c4-ea60-0001-at-1-1_3:silabs-cp210x']);
      expect(x.attached.map((a) => [a.path, a.note])).toEqual([
        [`${t.dev}/ttyUSB0`, 'id usb-10c4-ea60-0001 (from the serial number) is shared by 2 devices: usb-10c4-ea60-0001-at-1-1_2 is from the USB port'],
        [`${t.dev}/ttyUSB1`, 'id usb-10c4-ea60-0001 (from the serial number) is shared by 2 devices: usb-10c4-ea60-0001-at-1-1_3 is from the USB port'],
      ]);
      x.d.stop();
    }
  });

  it('a twin plugged in later does not rename the adapter already streaming; a USB id that a fixed port took falls back too', async () => {
    const t = tree();
    t.plug({ name: 'ttyUSB0', vendorId: '1a86', productId: '7523', serial: 'SAME', busPath: '1-4' });
    const x = await detector(t, { mode: 'sysfs', ports: [{ path: '/dev/ttyAMA0', profile: 'gps-uart', id: 'usb-0403-6001-TAKEN' }] });
    await x.d.start();
    expect(x.events).toEqual(['+usb-0403-6001-TAKEN:gps-uart', '+usb-1a86-7523-SAME:arduino-ch340']);
    t.plug({ name: 'ttyUSB1', vendorId: '1a86', productId: '7523', serial: 'SAME', busPath: '1-5' });
    await waitFor(() => x.events.length === 3, 'the twin');
    expect(x.events[2]).toBe('+usb-1a86-7523-SAME-at-1-5:arduino-ch340');
    t.plug({ name: 'ttyUSB2', vendorId: '0403', productId: '6001', serial: 'TAKEN', busPath: '1-6' });
    await waitFor(() => x.events.length === 4, 'the FTDI whose id config took');
    expect(x.events[3]).toBe('+usb-0403-6001-TAKEN-at-1-6:ftdi-ft232r');
    expect(x.attached[3].note).toBe('id usb-0403-6001-TAKEN is already used by another device: this one is usb-0403-6001-TAKEN-at-1-6');
    t.unplug('ttyUSB1', '1-5');
    await waitFor(() => x.events.length === 5, 'the twin gone');
    expect(x.events[4]).toBe('-usb-1a86-7523-SAME-at-1-5');
    await new Promise((r) => setTimeout(r, 200));
    expect(x.events).toHaveLength(5); // the first adapter kept its id throughout
  });

  it('two fixed ports given the same id: both present, the second under a numbered id', async () => {
    const t = tree();
    const x = await detector(t, {
      mode: 'off',
      ports: [
        { path: '/dev/ttyAMA0', profile: 'gps-uart', id: 'gps' },
        { path: '/dev/ttyAMA1', profile: 'gps-uart', id: 'gps' },
      ],
    });
    await x.d.start();
    expect(x.events).toEqual(['+gps:gps-uart', '+gps-2:gps-uart']);
    expect(x.attached[1]).toMatchObject({ path: '/dev/ttyAMA1', note: 'id gps is already used by another device: this one is gps-2' });
  });

  it('a profile change re-matches what is present: a device whose profile changed goes and comes back', async () => {
    const t = tree();
    t.plug(ftdi);
    const x = await detector(t, { mode: 'off', ports: [{ path: '/dev/ttyAMA0', profile: 'gps-uart' }] });
    await x.d.start();
    x.events.length = 0;
    const profiles = (await loadProfiles(shippedProfilesDir)).profiles;
    x.setProfiles(profiles);
    await x.d.rematch();
    expect(x.events).toEqual([]); // same content: nothing happens
    profiles.set('gps-uart', { ...profiles.get('gps-uart')!, serial: { ...profiles.get('gps-uart')!.serial, baudRate: 38400 } });
    await x.d.rematch();
    expect(x.events).toEqual(['-port-ttyAMA0', '+port-ttyAMA0:gps-uart']);
  });
});
