import type { Worker } from 'node:worker_threads';
import { startWorker } from './worker.js';
import type { HistoryLimits, HistoryStats, InsertOutcome, StoredSample } from './history.js';

export type WriterRequest =
  | { id: number; op: 'insert'; samples: StoredSample[] }
  | { id: number; op: 'prune'; now: number }
  | { id: number; op: 'inventory'; device: string; inventory: { ts: number } }
  | { id: number; op: 'close' };

export type WriterReply =
  | { type: 'ready'; stats: HistoryStats }
  | { type: 'failed'; message: string }
  | { type: 'done'; id: number; stats: HistoryStats; outcomes?: InsertOutcome[]; pruned?: { deleted: number; usedBytes: number } }
  | { type: 'error'; id: number; message: string; code: string };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** Requests waiting for the writer thread at most: beyond, an insert is refused at once. */
const MAX_PENDING = 10_000;

/**
 * The metric history's writes, on a worker thread of their own: SQLite inserts, commits,
 * WAL checkpoints (with their fsync) and retention never block the event loop. An insert
 * resolves once its transaction is committed (in the WAL), and the thread commits every
 * request that arrived meanwhile together (group commit). If the thread dies, every waiting
 * request is rejected and `onBroken` says why.
 */
export class HistoryWriter {
  stats: HistoryStats;
  private readonly pending = new Map<number, { resolve: (reply: Extract<WriterReply, { type: 'done' }>) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private broken: Error | null = null;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    ready: HistoryStats,
    private readonly onBroken: (error: Error) => void,
  ) {
    this.stats = ready;
    worker.on('message', (reply: WriterReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`the history writer thread exited (${code})`)));
  }

  /** Starts the thread and opens the file in it; rejects when it cannot be opened. */
  static start(file: string, limits: HistoryLimits, onBroken: (error: Error) => void = () => {}): Promise<HistoryWriter> {
    const worker = startWorker('history-worker', { file, limits });
    return new Promise((resolve, reject) => {
      const early = (error: Error) => (off(), reject(error));
      const exited = (code: number) => (off(), reject(new Error(`the history writer thread exited (${code}) before it opened ${file}`)));
      const first = (reply: WriterReply) => {
        off();
        if (reply.type === 'ready') return resolve(new HistoryWriter(worker, reply.stats, onBroken));
        void worker.terminate();
        reject(new Error(reply.type === 'failed' ? reply.message : 'the history writer thread did not start'));
      };
      // only these three: removeAllListeners() would also cut the worker's own message forwarding
      const off = () => worker.off('error', early).off('exit', exited).off('message', first);
      worker.on('error', early).on('exit', exited).on('message', first);
    });
  }

  /** Stores samples; resolves with each one's outcome once they are committed. */
  async insert(samples: StoredSample[]): Promise<InsertOutcome[]> {
    return (await this.request({ op: 'insert', samples })).outcomes ?? [];
  }

  /** Applies retention (by age, then by bytes) in the thread. */
  async prune(now: number): Promise<{ deleted: number; usedBytes: number }> {
    return (await this.request({ op: 'prune', now })).pruned ?? { deleted: 0, usedBytes: 0 };
  }

  /** Keeps a device's inventory (the newest by its ts). */
  async putInventory(device: string, inventory: { ts: number }): Promise<void> {
    await this.request({ op: 'inventory', device, inventory });
  }

  /** Commits what was asked before, closes the file and ends the thread. */
  close(): Promise<void> {
    this.closing ??= this.broken
      ? Promise.resolve()
      : this.request({ op: 'close' }).then(
          () => undefined,
          () => undefined,
        );
    return this.closing;
  }

  private request(body: DistributiveOmit<WriterRequest, 'id'>): Promise<Extract<WriterReply, { type: 'done' }>> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closing && body.op !== 'close') return Promise.reject(new Error('the metric history is closing'));
    if (this.pending.size >= MAX_PENDING) return Promise.reject(new Error(`the history writer has ${MAX_PENDING} requests waiting`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...body } as WriterRequest);
    });
  }

  private settle(reply: WriterReply): void {
    if (reply.type !== 'done' && reply.type !== 'error') return;
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (reply.type === 'error') return waiter?.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    this.stats = reply.stats;
    waiter?.resolve(reply);
  }

  private fail(error: Error): void {
    if (this.broken) return;
    this.broken = error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
    if (!this.closing) this.onBroken(error);
  }
}
