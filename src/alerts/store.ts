import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Low } from 'lowdb';
import type { AlertMemory, AlertNotice } from '../../machines/alert.js';
import type { AlertRecord } from '../../machines/alerts.js';

export interface PendingNotice {
  seq: number;
  notice: AlertNotice;
}

export interface ChannelCounters {
  delivered: number;
  /** the oldest pending notices dropped beyond maxPending */
  dropped: number;
  /** notices the channel refused for good (Slack's 400 invalid_payload) */
  rejected: number;
}

interface Data {
  version: 1;
  nextSeq: number;
  states: Record<string, AlertRecord>;
  pending: Record<string, PendingNotice[]>;
  counters: Record<string, ChannelCounters>;
}

export interface AlertStoreOptions {
  channels: string[];
  /** notices kept per channel while it cannot deliver; the oldest go beyond (counted) */
  maxPending: number;
  /** alert states remembered at most */
  maxStates?: number;
  /** hears of a damaged file set aside, of drops and of failed writes */
  warn?: (what: string, fields: Record<string, unknown>) => void;
}

/** State changes that carry no notice reach the file at most this often. */
const STATE_WRITE_MS = 1000;

/**
 * alerts.json in stateDir (lowdb, written whole and atomically: temporary file, rename): the
 * state of every alert that is not ok, and the notices not yet delivered, per channel, in
 * order. A notice is on disk before it is handed to any channel, and leaves only once its
 * channel took it, so neither a Slack outage nor a restart loses one; a crash between
 * Slack's answer and the write sends it once more (at least once). The file is small: states
 * are bounded by the alerts alive, notices by maxPending per channel.
 */
export class AlertStore {
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly db: Low<Data>,
    private readonly options: AlertStoreOptions,
  ) {}

  static async open(stateDir: string, options: AlertStoreOptions): Promise<AlertStore> {
    await mkdir(stateDir, { recursive: true });
    const [{ Low }, { JSONFile }] = await Promise.all([import('lowdb'), import('lowdb/node')]);
    const file = join(stateDir, 'alerts.json');
    // Not lowdb's preset: under NODE_ENV=test it keeps the data in memory only.
    const db = new Low<Data>(new JSONFile(file), empty());
    try {
      await db.read();
    } catch (error) {
      const aside = `${file}.damaged-${Date.now()}`;
      await rename(file, aside).catch(() => {});
      options.warn?.('alerts.json could not be read: set aside, starting empty', { aside, err: String(error) });
      db.data = empty();
    }
    if (!isData(db.data)) db.data = empty();
    const store = new AlertStore(db, options);
    for (const channel of options.channels) {
      db.data.pending[channel] ??= [];
      db.data.counters[channel] ??= { delivered: 0, dropped: 0, rejected: 0 };
    }
    return store;
  }

  states(): Record<string, AlertRecord> {
    return structuredClone(this.db.data.states);
  }

  /** A level change: kept (not ok) or forgotten (ok, or null: the alert ended); written soon. */
  setState(id: string, memory: AlertMemory | null): void {
    const states = this.db.data.states;
    if (!memory || memory.level === 'ok') delete states[id];
    else {
      states[id] = { ...memory, notified: states[id]?.notified ?? null };
      const ids = Object.keys(states);
      for (const old of ids.slice(0, Math.max(0, ids.length - (this.options.maxStates ?? 100_000)))) delete states[old];
    }
    this.timer ??= setTimeout(() => void this.write(), STATE_WRITE_MS).unref();
  }

  /** A notice for every channel; resolves once it is on disk. */
  async addNotice(notice: AlertNotice): Promise<void> {
    const data = this.db.data;
    const seq = data.nextSeq++;
    const state = data.states[notice.alert];
    if (state) state.notified = notice.kind;
    for (const channel of this.options.channels) {
      const list = data.pending[channel];
      list.push({ seq, notice });
      const over = list.length - this.options.maxPending;
      if (over > 0) {
        list.splice(0, over);
        data.counters[channel].dropped += over;
        this.options.warn?.('alert notices dropped: too many pending', { channel, dropped: over, maxPending: this.options.maxPending });
      }
    }
    await this.write();
  }

  head(channel: string): PendingNotice | undefined {
    return this.db.data.pending[channel]?.[0];
  }

  /** The channel took it (or refused it for good): it leaves the list. */
  async settle(channel: string, seq: number, outcome: 'delivered' | 'rejected'): Promise<void> {
    const list = this.db.data.pending[channel];
    const at = list.findIndex((p) => p.seq === seq);
    if (at < 0) return; // dropped meanwhile
    list.splice(at, 1);
    this.db.data.counters[channel][outcome]++;
    await this.write();
  }

  stats(channel: string): ChannelCounters & { pending: number } {
    return { ...this.db.data.counters[channel], pending: this.db.data.pending[channel]?.length ?? 0 };
  }

  /** Writes now; a failed write is reported and the data stays in memory for the next one. */
  async write(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      await this.db.write();
    } catch (error) {
      this.options.warn?.('alerts.json could not be written; kept in memory, tried again at the next change', { err: String(error) });
    }
  }

  async close(): Promise<void> {
    if (this.timer) await this.write();
  }
}

function empty(): Data {
  return { version: 1, nextSeq: 1, states: {}, pending: {}, counters: {} };
}

function isData(value: unknown): value is Data {
  const d = value as Partial<Data> | null;
  return (
    !!d && d.version === 1 && typeof d.nextSeq === 'number' && typeof d.states === 'object' && typeof d.pending === 'object' && typeof d.counters === 'object'
  );
}
