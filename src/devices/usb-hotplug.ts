import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** A source of "something changed on the USB bus" signals. */
export interface HotplugWatch {
  stop(): void;
}

export type UsbHotplugStart = (onChange: () => void) => { watch: HotplugWatch } | { unavailable: string };

/** systemd-udevd's control socket: present while udevd runs. */
const UDEVD_CONTROL = '/run/udev/control';

interface UsbModule {
  INIT_ERROR?: boolean;
  _supportedHotplugEvents?: () => number | boolean;
  getDeviceList(): unknown[];
  on(event: 'attach' | 'detach', listener: () => void): void;
  off(event: 'attach' | 'detach', listener: () => void): void;
  refHotplugEvents?: () => void;
  unrefHotplugEvents?: () => void;
}

/**
 * USB attach/detach from libusb's own hotplug (the `usb` package, whose Linux binary uses
 * libusb's udev backend: events come from systemd-udevd). It only says that something
 * changed: the tty behind a device comes from sysfs. Unavailable (and auto mode falls back to
 * sysfs polling) where the package does not load (libudev.so.1 missing), libusb cannot start
 * or has no hotplug, sees no bus at all (no root hub: a container, a machine without USB), or
 * udevd is not running: in each of those it would start but stay silent. The package is
 * loaded only when this is called.
 */
export const startUsbHotplug: UsbHotplugStart = (onChange) => {
  let usb: UsbModule;
  try {
    // CommonJS with a native addon: required, not bundled (see scripts/bundle.mjs)
    usb = (createRequire(import.meta.url)('usb') as { usb: UsbModule }).usb;
  } catch (error) {
    return { unavailable: `the usb package does not load: ${(error as Error).message.split('\n')[0]}` };
  }
  if (usb.INIT_ERROR) return { unavailable: 'libusb could not start (no USB bus or /dev/bus/usb not visible)' };
  if (!usb._supportedHotplugEvents?.()) return { unavailable: 'libusb reports no hotplug support here' };
  // Every bus has a root hub: seeing none, libusb sees no bus, and its hotplug would be silent.
  if (usb.getDeviceList().length === 0) return { unavailable: 'libusb sees no USB bus (no root hub)' };
  // The package's Linux build uses libusb's udev backend: its events come from udevd, not the kernel.
  if (!existsSync(UDEVD_CONTROL)) return { unavailable: `systemd-udevd is not running (no ${UDEVD_CONTROL}); libusb's hotplug would be silent` };
  const listener = () => onChange();
  usb.on('attach', listener);
  usb.on('detach', listener);
  // libusb's event thread would otherwise keep the process alive after a stop
  usb.unrefHotplugEvents?.();
  return {
    watch: {
      stop() {
        usb.off('attach', listener);
        usb.off('detach', listener);
      },
    },
  };
};
