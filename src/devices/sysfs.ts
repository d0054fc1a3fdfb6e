import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { UsbIdentity } from './profiles.js';

/** A USB serial tty as sysfs shows it. */
export interface UsbTty extends UsbIdentity {
  /** tty name, e.g. ttyUSB0 */
  name: string;
  /** device node, e.g. /dev/ttyUSB0 */
  path: string;
  /** the USB device's bus path, e.g. 1-1.2 (stable for a given physical port) */
  busPath: string;
  /** stable, topic-safe id */
  id: string;
}

export interface SysfsRoots {
  /** default /sys; tests point it at a fake tree of real dirs and symlinks */
  sys: string;
  /** default /dev */
  dev: string;
}

const read = (file: string) =>
  readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );

/**
 * Every tty backed by a USB interface: /sys/class/tty/<name>/device, resolved, then up the
 * tree to the interface (bInterfaceNumber) and the USB device (idVendor/idProduct). Needs no
 * udev and no privileges; ttys without a USB ancestor (consoles, ptys, on-board UARTs) are
 * left out (those are configured in devices.ports[]).
 */
export async function scanUsbTtys(roots: SysfsRoots): Promise<UsbTty[]> {
  const classDir = join(roots.sys, 'class/tty');
  let names: string[];
  try {
    names = await readdir(classDir);
  } catch {
    return [];
  }
  const found = await Promise.all(names.map((name) => usbTty(roots, name)));
  return found.filter((t): t is UsbTty => t !== undefined).sort((a, b) => a.name.localeCompare(b.name));
}

async function usbTty(roots: SysfsRoots, name: string): Promise<UsbTty | undefined> {
  const link = join(roots.sys, 'class/tty', name, 'device');
  let tty: string;
  try {
    tty = await realpath(link);
  } catch {
    return undefined; // virtual ttys have no device link
  }
  let iface: number | undefined;
  for (let depth = 0, dir = tty; depth < 8 && relative(roots.sys, dir) && !relative(roots.sys, dir).startsWith('..'); depth++, dir = dirname(dir)) {
    if (iface === undefined) {
      const n = await read(join(dir, 'bInterfaceNumber'));
      if (n !== undefined && /^[0-9a-fA-F]+$/.test(n)) iface = parseInt(n, 16);
    }
    const vendorId = await read(join(dir, 'idVendor'));
    if (vendorId === undefined) continue;
    const [productId, manufacturer, product, serial] = await Promise.all(['idProduct', 'manufacturer', 'product', 'serial'].map((f) => read(join(dir, f))));
    // A device being removed (or still being added) reads half-way: an id or a serial number
    // missing would make a phantom device. Only a tty still linked to the same place counts.
    if (!isUsbId(vendorId) || !isUsbId(productId) || !(await stillLinked(link, tty))) return undefined;
    const busPath = basename(dir);
    const identity = { vendorId: vendorId.toLowerCase(), productId: productId.toLowerCase(), manufacturer, product, serial, interface: iface };
    return { ...identity, name, path: join(roots.dev, name), busPath, id: usbDeviceId({ ...identity, busPath }) };
  }
  return undefined;
}

const isUsbId = (id: string | undefined): id is string => id !== undefined && /^[0-9a-fA-F]{4}$/.test(id);

async function stillLinked(link: string, target: string): Promise<boolean> {
  try {
    return (await realpath(link)) === target;
  } catch {
    return false;
  }
}

/** Topic-safe: letters, digits, "_" and "-" only, at most 96 characters. */
export const topicSafe = (text: string) => text.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 96);

/**
 * usb-<vid>-<pid>-<serial>, or -<bus path> for devices without a serial number (many CH340
 * and PL2303 clones), plus -if<NN> for interfaces other than 0 (dual and quad bridges).
 */
export function usbDeviceId(d: UsbIdentity & { busPath: string }): string {
  const unique = hasSerial(d) ? d.serial : `at-${d.busPath}`;
  return topicSafe(`usb-${d.vendorId}-${d.productId}-${unique}${ifaceSuffix(d)}`);
}

/**
 * The id when the serial number does not tell a device apart (two adapters with the same
 * one): usb-<vid>-<pid>-<serial>-at-<bus path>, stable while it stays in the same USB port.
 */
export function usbPortId(d: UsbIdentity & { busPath: string }): string {
  const serial = hasSerial(d) ? `${d.serial}-` : '';
  return topicSafe(`usb-${d.vendorId}-${d.productId}-${serial}at-${d.busPath}${ifaceSuffix(d)}`);
}

const hasSerial = (d: UsbIdentity): d is UsbIdentity & { serial: string } => d.serial !== undefined && /[A-Za-z0-9]/.test(d.serial);
const ifaceSuffix = (d: UsbIdentity) => (d.interface ? `-if${String(d.interface).padStart(2, '0')}` : '');
