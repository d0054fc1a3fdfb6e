import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Low } from 'lowdb';
import type { FirmwareMeta } from '../../machines/firmware-entry.js';
import { sha256 } from './registry.js';

interface IndexEntry extends FirmwareMeta {
  used: number;
}

interface IndexFile {
  devices: Record<string, IndexEntry>;
}

/**
 * Verified firmware on disk, so a restarted agent serves it with the registry unreachable:
 * `blobs/<hex>` files named by their sha256, and `index.json` (lowdb: device → build, last use).
 * Bounded in bytes; the least recently used devices go first. Files are written to a
 * temporary name and renamed, so a crash never leaves a half file under a digest's name.
 */
export class DiskCache {
  private index: Record<string, IndexEntry> = {};
  private opened?: Promise<void>;
  private db?: Low<IndexFile>;
  private tick = 0;

  constructor(
    readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  private open(): Promise<void> {
    return (this.opened ??= (async () => {
      await mkdir(join(this.dir, 'blobs'), { recursive: true });
      const [{ Low }, { JSONFile }] = await Promise.all([import('lowdb'), import('lowdb/node')]);
      this.db = new Low<IndexFile>(new JSONFile(join(this.dir, 'index.json')), { devices: {} });
      try {
        await this.db.read();
      } catch {
        // a damaged index only costs the cache: the blobs are fetched again
      }
      const devices = this.db.data?.devices;
      this.index = devices && typeof devices === 'object' ? devices : {};
      this.db.data = { devices: this.index };
      this.tick = Math.max(0, ...Object.values(this.index).map((e) => e.used ?? 0));
    })());
  }

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', digest.replace(/^sha256:/, ''));
  }

  /** The device's cached build and bytes, re-checked against the digest (a corrupt file is dropped). */
  async load(device: string): Promise<{ meta: FirmwareMeta; bytes: Buffer } | undefined> {
    await this.open();
    const entry = this.index[device];
    if (!entry) return undefined;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(entry.digest));
    } catch {
      delete this.index[device];
      return undefined;
    }
    if (bytes.length !== entry.size || sha256(bytes) !== entry.digest) {
      delete this.index[device];
      await this.save();
      return undefined;
    }
    const { used: _used, ...meta } = entry;
    return { meta, bytes };
  }

  /** Stores a verified build for the device, then trims to the byte bound (sparing this one). */
  async put(meta: FirmwareMeta, device: string, bytes: Buffer): Promise<void> {
    await this.open();
    const path = this.blobPath(meta.digest);
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    this.index[device] = { ...meta, used: ++this.tick };
    await this.trim(device);
    await this.save();
  }

  /** Marks devices used. Kept in memory and written with the next stored build, not per
   * request batch: rewriting the index every few seconds would wear an SD card for little. */
  touch(devices: Iterable<string>): void {
    for (const device of devices) if (this.index[device]) this.index[device].used = ++this.tick;
  }

  get bytes(): number {
    const seen = new Map<string, number>();
    for (const e of Object.values(this.index)) seen.set(e.digest, e.size);
    return [...seen.values()].reduce((a, b) => a + b, 0);
  }

  private async trim(keep: string): Promise<void> {
    const order = Object.entries(this.index)
      .filter(([d]) => d !== keep)
      .sort((a, b) => a[1].used - b[1].used);
    for (const [device, entry] of order) {
      if (this.bytes <= this.maxBytes) break;
      delete this.index[device];
      if (!Object.values(this.index).some((e) => e.digest === entry.digest)) await unlink(this.blobPath(entry.digest)).catch(() => {});
    }
  }

  /** index.json, written whole (it is small); lowdb writes it atomically, one write at a time. */
  private save(): Promise<void> {
    return this.db!.write().catch(() => {});
  }
}
