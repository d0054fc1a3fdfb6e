import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** One sample of one device: flattened dash-separated keys to numbers. */
export interface StoredSample {
  device: string;
  ts: number;
  values: Record<string, number>;
}

export interface HistoryLimits {
  /** points older than this are deleted */
  retentionMs: number;
  /** the database (pages in use) is kept under this by deleting the oldest points */
  maxBytes: number;
  /** devices and keys per device held at most; samples beyond are refused or cut */
  maxDevices: number;
  maxKeysPerDevice: number;
}

export interface DeviceRow {
  id: string;
  lastSeen: number;
  /** time between its last two samples, ms (null after one sample) */
  lastGapMs: number | null;
}

export interface SeriesPoint {
  /** start of the bucket, ms since the epoch */
  ts: number;
  min: number;
  max: number;
  avg: number;
  count: number;
}

export interface HistoryStats {
  /** samples stored by this process */
  samples: number;
  /** values stored in this file since it was made, across restarts (pruned ones included) */
  valuesStored: number;
  valuesRefused: number;
  pointsDeleted: number;
}

export class HistoryLimitError extends Error {
  readonly code = 'history_full';
}

/** What became of one sample of a batch: values stored, or why it was refused (the rest went on). */
export type InsertOutcome = { stored: number } | { refused: string };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, last_ts INTEGER NOT NULL, gap_ms INTEGER, latest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL, key TEXT NOT NULL, UNIQUE (device_id, key));
CREATE TABLE IF NOT EXISTS points (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inventory (device TEXT PRIMARY KEY, ts INTEGER NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (series_id INTEGER NOT NULL, minute INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL, sum REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (series_id, minute)) WITHOUT ROWID;
`;

/** Buckets of at least this long are answered from the per-minute rollup. */
const MINUTE_MS = 60_000;

/**
 * Metric history in SQLite (WAL). A sample is one transaction: when `insert` returns, it is
 * in the WAL file and survives a crash of the process (synchronous=NORMAL: the WAL is
 * fsynced at checkpoints, so a power cut may lose the last ones; the fsync window). One row
 * per value in a table clustered by (series, time), so a series query reads one range.
 */
export class History {
  readonly stats: HistoryStats = { samples: 0, valuesStored: 0, valuesRefused: 0, pointsDeleted: 0 };
  private readonly devices = new Map<string, { id: number; lastTs: number; keys: Map<string, number> }>();
  private readonly statements;
  private readonly insertTx;
  private readonly insertManyTx;
  private readonly insertBatchTx;

  private constructor(
    private readonly db: Database.Database,
    readonly limits: HistoryLimits,
  ) {
    this.statements = {
      addDevice: db.prepare<[string, number, string]>('INSERT INTO devices (name, last_ts, latest) VALUES (?, ?, ?) RETURNING id'),
      touchDevice: db.prepare<[number, number, string, number]>('UPDATE devices SET gap_ms = ? - last_ts, last_ts = ?, latest = ? WHERE id = ?'),
      addSeries: db.prepare<[number, string]>('INSERT INTO series (device_id, key) VALUES (?, ?) RETURNING id'),
      // A sample delivered twice (QoS 1 after a crash) keeps its first copy and is counted once.
      addPoint: db.prepare<[number, number, number]>('INSERT OR IGNORE INTO points (series_id, ts, value) VALUES (?, ?, ?)'),
      // the values stored since the file was made, kept in the same transaction as the values
      addStored: db.prepare<[number]>("UPDATE meta SET value = value + ? WHERE key = 'values_stored'"),
      addToMinute: db.prepare<[number, number, number, number, number]>(
        'INSERT INTO minutes (series_id, minute, min, max, sum, count) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (series_id, minute) DO UPDATE SET min = min(min, excluded.min), max = max(max, excluded.max), sum = sum + excluded.sum, count = count + 1',
      ),
    };
    this.insertTx = db.transaction((sample: StoredSample) => this.insertOne(sample));
    this.insertManyTx = db.transaction((samples: readonly StoredSample[]) => samples.reduce((n, sample) => n + this.insertOne(sample), 0));
    this.insertBatchTx = db.transaction((samples: readonly StoredSample[]) => samples.map((sample) => this.insertOrRefuse(sample)));
    this.stats.valuesStored = (db.prepare("SELECT value FROM meta WHERE key = 'values_stored'").pluck().get() as number | undefined) ?? 0;
    this.loadMaps();
  }

  /** The devices and series ids as the file has them (again after a rolled-back transaction, whose new ids are gone). */
  private loadMaps(): void {
    this.devices.clear();
    for (const row of this.db.prepare('SELECT id, name, last_ts FROM devices').all() as Array<{ id: number; name: string; last_ts: number }>) {
      this.devices.set(row.name, { id: row.id, lastTs: row.last_ts, keys: new Map() });
    }
    const byId = new Map([...this.devices.values()].map((d) => [d.id, d]));
    for (const row of this.db.prepare('SELECT id, device_id, key FROM series').all() as Array<{ id: number; device_id: number; key: string }>) {
      byId.get(row.device_id)?.keys.set(row.key, row.id);
    }
  }

  /** Runs a write transaction; if it fails, the ids it cached and what it counted go with it. */
  private write<T>(run: () => T): T {
    const counted = { ...this.stats };
    try {
      return run();
    } catch (error) {
      Object.assign(this.stats, counted);
      this.loadMaps();
      throw error;
    }
  }

  static open(file: string, limits: HistoryLimits): History {
    mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('journal_size_limit = 16777216');
    db.exec(SCHEMA);
    // A history from before the counter starts it at the points it holds then (the best it can know).
    db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('values_stored', (SELECT count(*) FROM points))").run();
    return new History(db, limits);
  }

  /** The same file for the API's queries on this thread: it never writes (query_only). */
  static openReader(file: string, limits: HistoryLimits): History {
    const db = new Database(file, { fileMustExist: true });
    db.pragma('query_only = ON');
    return new History(db, limits);
  }

  /** Stores a sample in one transaction; returns how many values were stored. */
  insert(sample: StoredSample): number {
    return this.write(() => this.insertTx(sample));
  }

  /** Stores several samples in one transaction (group commit: one WAL append for all). */
  insertMany(samples: readonly StoredSample[]): number {
    return this.write(() => this.insertManyTx(samples));
  }

  /**
   * Stores several samples in one transaction (a group commit), each with its own outcome: a
   * sample over the device limit is refused alone. Any other error (disk full, I/O) rolls the
   * whole batch back and is thrown: none of it is stored.
   */
  insertBatch(samples: readonly StoredSample[]): InsertOutcome[] {
    return this.write(() => this.insertBatchTx(samples));
  }

  private insertOrRefuse(sample: StoredSample): InsertOutcome {
    try {
      return { stored: this.insertOne(sample) };
    } catch (error) {
      if (error instanceof HistoryLimitError) return { refused: error.message };
      throw error;
    }
  }

  private insertOne(sample: StoredSample): number {
    const s = this.statements;
    let device = this.devices.get(sample.device);
    const latest = JSON.stringify({ ts: sample.ts, values: sample.values });
    if (!device) {
      if (this.devices.size >= this.limits.maxDevices) throw new HistoryLimitError(`history holds ${this.limits.maxDevices} devices (the limit)`);
      const { id } = s.addDevice.get(sample.device, sample.ts, latest) as { id: number };
      device = { id, lastTs: sample.ts, keys: new Map() };
      this.devices.set(sample.device, device);
    } else if (sample.ts >= device.lastTs) {
      s.touchDevice.run(sample.ts, sample.ts, latest, device.id);
      device.lastTs = sample.ts;
    }
    let stored = 0;
    for (const [key, value] of Object.entries(sample.values)) {
      let series = device.keys.get(key);
      if (series === undefined) {
        if (device.keys.size >= this.limits.maxKeysPerDevice) {
          this.stats.valuesRefused++;
          continue;
        }
        series = (s.addSeries.get(device.id, key) as { id: number }).id;
        device.keys.set(key, series);
      }
      if (s.addPoint.run(series, sample.ts, value).changes === 0) continue;
      s.addToMinute.run(series, sample.ts - (sample.ts % MINUTE_MS), value, value, value);
      stored++;
    }
    if (stored > 0) s.addStored.run(stored);
    this.stats.samples++;
    this.stats.valuesStored += stored;
    return stored;
  }

  /**
   * Keeps a device's inventory (the newest by its ts). Bounded like the devices: an inventory
   * of a device beyond maxDevices is refused.
   */
  putInventory(device: string, inventory: { ts: number }): void {
    const known = this.db.prepare('SELECT 1 FROM inventory WHERE device = ?').pluck().get(device) !== undefined;
    if (!known && (this.db.prepare('SELECT count(*) FROM inventory').pluck().get() as number) >= this.limits.maxDevices) {
      throw new HistoryLimitError(`history holds ${this.limits.maxDevices} inventories (the limit)`);
    }
    this.db
      .prepare(
        'INSERT INTO inventory (device, ts, doc) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET ts = excluded.ts, doc = excluded.doc WHERE excluded.ts >= inventory.ts',
      )
      .run(device, inventory.ts, JSON.stringify(inventory));
  }

  inventory(device: string): unknown {
    const doc = this.db.prepare('SELECT doc FROM inventory WHERE device = ?').pluck().get(device) as string | undefined;
    return doc === undefined ? undefined : JSON.parse(doc);
  }

  deviceList(): DeviceRow[] {
    const rows = this.db.prepare('SELECT name, last_ts, gap_ms FROM devices ORDER BY name').all() as Array<{
      name: string;
      last_ts: number;
      gap_ms: number | null;
    }>;
    return rows.map((r) => ({ id: r.name, lastSeen: r.last_ts, lastGapMs: r.gap_ms }));
  }

  // The reads below ask the database, not the maps above: the API reads on its own connection
  // what the writer thread (another connection) stored.

  has(device: string): boolean {
    return this.db.prepare('SELECT 1 FROM devices WHERE name = ?').pluck().get(device) !== undefined;
  }

  keys(device: string): string[] {
    return this.db.prepare('SELECT s.key FROM series s JOIN devices d ON d.id = s.device_id WHERE d.name = ? ORDER BY s.key').pluck().all(device) as string[];
  }

  latest(device: string): { ts: number; values: Record<string, number> } | undefined {
    const row = this.db.prepare('SELECT latest FROM devices WHERE name = ?').pluck().get(device) as string | undefined;
    return row === undefined ? undefined : JSON.parse(row);
  }

  private seriesId(device: string, key: string): number | undefined {
    return this.db.prepare('SELECT s.id FROM series s JOIN devices d ON d.id = s.device_id WHERE d.name = ? AND s.key = ?').pluck().get(device, key) as
      | number
      | undefined;
  }

  /**
   * Points of one series in [from, to), downsampled to at most `points` buckets (min/max/avg
   * each). Buckets of a minute or more are whole minutes, read from the per-minute rollup (so
   * a day is 1,440 rows, not 86,400), with `from` rounded down to its minute.
   */
  series(device: string, key: string, from: number, to: number, points: number): SeriesPoint[] {
    const id = this.seriesId(device, key);
    if (id === undefined || to <= from) return [];
    let bucket = Math.max(1, Math.ceil((to - from) / points));
    if (bucket >= MINUTE_MS) {
      bucket = Math.ceil(bucket / MINUTE_MS) * MINUTE_MS;
      const start = from - (from % MINUTE_MS);
      const rows = this.db
        .prepare(
          'SELECT CAST((minute - ?) / ? AS INTEGER) AS b, min(min) AS min, max(max) AS max, sum(sum) / sum(count) AS avg, sum(count) AS count FROM minutes WHERE series_id = ? AND minute >= ? AND minute < ? GROUP BY b ORDER BY b',
        )
        .all(start, bucket, id, start, to) as Array<{ b: number; min: number; max: number; avg: number; count: number }>;
      return rows.map((r) => ({ ts: start + r.b * bucket, min: r.min, max: r.max, avg: r.avg, count: r.count }));
    }
    const rows = this.db
      .prepare(
        'SELECT CAST((ts - ?) / ? AS INTEGER) AS b, min(value) AS min, max(value) AS max, avg(value) AS avg, count(*) AS count FROM points WHERE series_id = ? AND ts >= ? AND ts < ? GROUP BY b ORDER BY b',
      )
      .all(from, bucket, id, from, to) as Array<{ b: number; min: number; max: number; avg: number; count: number }>;
    return rows.map((r) => ({ ts: from + r.b * bucket, min: r.min, max: r.max, avg: r.avg, count: r.count }));
  }

  /** Bytes of the database in use (pages not on the free list). */
  usedBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * size;
  }

  /** Deletes points older than `cutoff` in every series (each an index range), in one transaction. */
  deleteBefore(cutoff: number): number {
    const del = this.db.prepare('DELETE FROM points WHERE series_id = ? AND ts < ?');
    const delMinutes = this.db.prepare('DELETE FROM minutes WHERE series_id = ? AND minute < ?');
    const minute = cutoff - (cutoff % MINUTE_MS); // the minute the cutoff falls in stays
    const run = this.db.transaction(() => {
      let n = 0;
      for (const device of this.devices.values()) {
        for (const id of device.keys.values()) {
          n += del.run(id, cutoff).changes;
          delMinutes.run(id, minute);
        }
      }
      return n;
    });
    const deleted = run();
    this.stats.pointsDeleted += deleted;
    return deleted;
  }

  /** The oldest point's time, or undefined when there is none. */
  oldest(): number | undefined {
    const first = this.db.prepare('SELECT ts FROM points WHERE series_id = ? ORDER BY ts LIMIT 1').pluck();
    let oldest: number | undefined;
    for (const device of this.devices.values()) {
      for (const id of device.keys.values()) {
        const ts = first.get(id) as number | undefined;
        if (ts !== undefined && (oldest === undefined || ts < oldest)) oldest = ts;
      }
    }
    return oldest;
  }

  /** Applies retention: by age, then by bytes (a tenth of the remaining time span at a time). */
  prune(now: number): { deleted: number; usedBytes: number } {
    let deleted = this.deleteBefore(now - this.limits.retentionMs);
    for (let round = 0; round < 100 && this.usedBytes() > this.limits.maxBytes; round++) {
      const oldest = this.oldest();
      if (oldest === undefined) break;
      deleted += this.deleteBefore(oldest + Math.max(1, Math.ceil((now - oldest) / 10)));
    }
    if (deleted > 0) this.db.pragma('wal_checkpoint(PASSIVE)');
    return { deleted, usedBytes: this.usedBytes() };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
