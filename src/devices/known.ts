import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Low } from 'lowdb';
import type { PresentDevice } from '../../machines/devices.js';

/** A device this agent has seen, kept across restarts (devices.json in stateDir). */
export interface KnownDevice {
  id: string;
  profile: string | null;
  path: string;
  source: PresentDevice['source'];
  vendorId?: string;
  productId?: string;
  serial?: string;
  product?: string;
  manufacturer?: string;
  firstSeen: number;
  lastSeen: number;
}

type Data = { devices: KnownDevice[] };
const MAX_KNOWN = 200;
const WRITE_AFTER_MS = 1000;

/**
 * Known devices in a lowdb file, written atomically and at most once a second (plugging
 * things in and out must not turn into a write per event on an SD card). The least recently
 * seen go first beyond MAX_KNOWN.
 */
export class KnownDevices {
  private timer: NodeJS.Timeout | undefined;

  private constructor(private readonly db: Low<Data>) {}

  static async open(stateDir: string): Promise<KnownDevices> {
    await mkdir(stateDir, { recursive: true });
    const [{ Low }, { JSONFile }] = await Promise.all([import('lowdb'), import('lowdb/node')]);
    const db = new Low<Data>(new JSONFile(join(stateDir, 'devices.json')), { devices: [] });
    try {
      await db.read();
    } catch {
      db.data = { devices: [] }; // a damaged file only costs the history
    }
    if (!Array.isArray(db.data?.devices)) db.data = { devices: [] };
    return new KnownDevices(db);
  }

  all(): readonly KnownDevice[] {
    return this.db.data.devices;
  }

  seen(device: PresentDevice, now: number): void {
    const list = this.db.data.devices;
    const before = list.find((d) => d.id === device.id);
    const { at: _at, ...identity } = device;
    const entry: KnownDevice = { ...identity, firstSeen: before?.firstSeen ?? now, lastSeen: now };
    this.db.data.devices = [...list.filter((d) => d.id !== device.id), entry].slice(-MAX_KNOWN);
    this.schedule();
  }

  left(id: string, now: number): void {
    const entry = this.db.data.devices.find((d) => d.id === id);
    if (!entry) return;
    entry.lastSeen = now;
    this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.db.write().catch(() => {});
    }, WRITE_AFTER_MS);
  }

  async close(): Promise<void> {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.db.write();
  }
}
