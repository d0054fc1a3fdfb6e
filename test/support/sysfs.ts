import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export interface FakeUsbTty {
  name: string;
  vendorId: string;
  productId: string;
  serial?: string;
  manufacturer?: string;
  product?: string;
  /** bus path of the USB device, e.g. 1-1.2 */
  busPath?: string;
  interface?: number;
  /** usb-serial drivers put the tty under a port device below the interface; cdc_acm does not */
  driver?: 'usbserial' | 'acm';
  /** what /dev/<name> points at (a pty link in tests) */
  target?: string;
}

/**
 * A fake sysfs and /dev made of real directories, files and symlinks, laid out as Linux does:
 * /sys/class/tty/<name>/device -> ../../../devices/.../<bus>/<bus>:1.<if>[/<name>].
 */
export class FakeSysfs {
  readonly root = mkdtempSync(join(tmpdir(), 'edgevisor-sysfs-'));
  readonly sys = join(this.root, 'sys');
  readonly dev = join(this.root, 'dev');

  constructor() {
    mkdirSync(join(this.sys, 'class/tty'), { recursive: true });
    mkdirSync(this.dev, { recursive: true });
    // ttys that are no USB devices: a console without a device link, an on-board UART
    mkdirSync(join(this.sys, 'class/tty/tty0'));
    const uart = join(this.sys, 'devices/platform/serial8250/tty/ttyS0');
    mkdirSync(uart, { recursive: true });
    mkdirSync(join(this.sys, 'class/tty/ttyS0'));
    symlinkSync(relative(join(this.sys, 'class/tty/ttyS0'), uart), join(this.sys, 'class/tty/ttyS0/device'));
  }

  plug(tty: FakeUsbTty): void {
    const bus = tty.busPath ?? '1-1';
    const usbDir = join(this.sys, 'devices/pci0000:00/0000:00:14.0/usb1', bus);
    const ifDir = join(usbDir, `${bus}:1.${tty.interface ?? 0}`);
    const deviceDir = tty.driver === 'acm' ? ifDir : join(ifDir, tty.name);
    mkdirSync(deviceDir, { recursive: true });
    writeFileSync(join(usbDir, 'idVendor'), `${tty.vendorId}\n`);
    writeFileSync(join(usbDir, 'idProduct'), `${tty.productId}\n`);
    for (const key of ['serial', 'manufacturer', 'product'] as const) if (tty[key] !== undefined) writeFileSync(join(usbDir, key), `${tty[key]}\n`);
    writeFileSync(join(ifDir, 'bInterfaceNumber'), `${String(tty.interface ?? 0).padStart(2, '0')}\n`);
    const classDir = join(this.sys, 'class/tty', tty.name);
    mkdirSync(classDir, { recursive: true });
    symlinkSync(relative(classDir, deviceDir), join(classDir, 'device'));
    if (tty.target) symlinkSync(tty.target, join(this.dev, tty.name));
  }

  unplug(name: string, busPath = '1-1'): void {
    rmSync(join(this.sys, 'class/tty', name), { recursive: true, force: true });
    rmSync(join(this.sys, 'devices/pci0000:00/0000:00:14.0/usb1', busPath), { recursive: true, force: true });
    rmSync(join(this.dev, name), { force: true });
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
