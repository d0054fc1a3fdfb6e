import { realpath } from 'node:fs/promises';
import type { PresentDevice } from '../../machines/devices.js';
import { matchProfile, type Profile } from './profiles.js';
import { assignIds, type IdCandidate } from './ids.js';
import { scanUsbTtys, topicSafe, usbPortId, type SysfsRoots, type UsbTty } from './sysfs.js';
import type { HotplugWatch, UsbHotplugStart } from './usb-hotplug.js';

export type HotplugMode = 'auto' | 'usb' | 'sysfs' | 'off';

export interface FixedPort {
  path: string;
  profile: string;
  id?: string;
}

export interface DetectorOptions {
  roots: SysfsRoots;
  mode: HotplugMode;
  pollMs: number;
  ports: FixedPort[];
  profiles: () => Map<string, Profile>;
  startUsb: UsbHotplugStart;
  onAttach: (device: PresentDevice) => void;
  onDetach: (id: string) => void;
  onSource: (source: string, problem: string | null) => void;
  onError: (error: unknown) => void;
  now?: () => number;
}

/** After a USB event the tty appears once the driver is bound (a module may load first): look again a few times. */
const RESCAN_AFTER_EVENT_MS = [0, 100, 300, 700, 1500, 3000, 6000, 10_000];
/** With USB hotplug, a slow sweep still catches a tty bound or unbound without a USB event
 * (a driver loaded later, an event lost). A sweep costs well under a millisecond. */
const SAFETY_SWEEP_MS = 5_000;

/**
 * Every serial device present, from three sources merged into one view: USB ttys in sysfs
 * (looked at on each USB hotplug event, or polled), and the ports fixed by config. Each
 * device is matched against the profiles; a change of profiles re-matches what is present
 * (a device whose profile changed is reported gone, then attached again).
 */
export class DeviceDetector {
  private readonly present = new Map<string, { device: PresentDevice; profileVersion: string }>();
  /** the id each device present has (by source and path), so that it keeps it while present */
  private readonly idOfKey = new Map<string, string>();
  private usb: HotplugWatch | undefined;
  private timers = new Set<NodeJS.Timeout>();
  private interval: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: DetectorOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Starts watching; devices already present are reported now. */
  async start(): Promise<void> {
    let source = 'config only';
    let problem: string | null = null;
    if (this.o.mode === 'auto' || this.o.mode === 'usb') {
      const started = this.o.startUsb(() => this.afterUsbEvent());
      if ('watch' in started) {
        this.usb = started.watch;
        source = `usb hotplug (and a sysfs sweep every ${SAFETY_SWEEP_MS / 1000} s)`;
        this.interval = setInterval(() => this.rescan(), SAFETY_SWEEP_MS);
      } else {
        if (this.o.mode === 'usb') problem = `usb hotplug unavailable (${started.unavailable}); polling sysfs instead`;
        source = `sysfs polling every ${this.o.pollMs} ms (usb hotplug unavailable: ${started.unavailable})`;
      }
    }
    if (!this.usb && this.o.mode !== 'off') {
      if (this.o.mode === 'sysfs') source = `sysfs polling every ${this.o.pollMs} ms`;
      this.interval = setInterval(() => this.rescan(), this.o.pollMs);
    }
    this.interval?.unref();
    this.o.onSource(source, problem);
    await this.rescan();
  }

  stop(): void {
    this.stopped = true;
    this.usb?.stop();
    clearInterval(this.interval);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Profiles changed: match everything present again. */
  rematch(): Promise<void> {
    return this.rescan();
  }

  private afterUsbEvent(): void {
    for (const delay of RESCAN_AFTER_EVENT_MS) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.rescan();
      }, delay);
      timer.unref();
      this.timers.add(timer);
    }
  }

  /** One scan at a time; a request during a scan runs one more after it. */
  rescan(): Promise<void> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.again = false;
        try {
          await this.scanOnce();
        } catch (error) {
          this.o.onError(error);
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const ttys = this.o.mode === 'off' ? [] : await scanUsbTtys(this.o.roots);
    if (this.stopped) return;
    const profiles = this.o.profiles();
    const found: Array<{ candidate: IdCandidate; device: (id: string, note?: string) => PresentDevice; profile: Profile | undefined }> = [];
    this.o.ports.forEach((port, index) => {
      const profile = profiles.get(port.profile);
      const wanted = port.id ?? `port-${topicSafe(port.path.replace(/^\/dev\//, ''))}`;
      found.push({
        candidate: { key: `config:${index}:${port.path}`, wanted, fallbacks: [], repeatable: false },
        device: (id, note) => ({ id, path: port.path, profile: profile ? profile.name : null, source: 'config', note, at: 0 }),
        profile,
      });
    });
    // A tty that devices.ports names already (by any path to the same node) is the config's.
    const configured = new Set(await Promise.all(this.o.ports.map((p) => realpath(p.path).catch(() => p.path))));
    for (const tty of ttys) {
      if (configured.has(await realpath(tty.path).catch(() => tty.path))) continue;
      const profile = matchProfile(profiles.values(), tty);
      const port = usbPortId(tty);
      found.push({
        candidate: { key: `usb:${tty.name}:${tty.busPath}`, wanted: tty.id, fallbacks: [port, topicSafe(`${port}-${tty.name}`)], repeatable: true },
        device: (id, note) => usbDevice(tty, id, profile, note),
        profile,
      });
    }
    const ids = assignIds(
      found.map((f) => f.candidate),
      this.idOfKey,
    );
    const seen = new Map<string, { device: PresentDevice; profileVersion: string }>();
    this.idOfKey.clear();
    for (const { candidate, device, profile } of found) {
      const { id, note } = ids.get(candidate.key)!;
      this.idOfKey.set(candidate.key, id);
      seen.set(id, { device: device(id, note), profileVersion: fingerprint(profile) });
    }
    this.report(seen);
  }

  /** Detaches what is gone and attaches what is new or changed (path, profile content or note). */
  private report(seen: Map<string, { device: PresentDevice; profileVersion: string }>): void {
    for (const id of [...this.present.keys()]) {
      if (!seen.has(id)) {
        this.present.delete(id);
        this.o.onDetach(id);
      }
    }
    for (const [id, entry] of seen) {
      const before = this.present.get(id);
      // Same path and the same profile content: nothing changed (a reload of other files is no change).
      if (before && before.device.path === entry.device.path && before.profileVersion === entry.profileVersion && before.device.note === entry.device.note)
        continue;
      if (before) this.o.onDetach(id);
      entry.device.at = this.now();
      this.present.set(id, entry);
      this.o.onAttach(entry.device);
    }
  }
}

const fingerprint = (profile: Profile | undefined) => (profile ? JSON.stringify(profile) : '');

function usbDevice(tty: UsbTty, id: string, profile: Profile | undefined, note: string | undefined): PresentDevice {
  return {
    id,
    path: tty.path,
    profile: profile?.name ?? null,
    source: 'usb',
    vendorId: tty.vendorId,
    productId: tty.productId,
    serial: tty.serial,
    product: tty.product,
    manufacturer: tty.manufacturer,
    note,
    at: 0,
  };
}
