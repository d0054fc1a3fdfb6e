/**
 * The metric history's writer thread (see history-writer.ts): the one connection that writes
 * monitor.db. Requests that arrive while a commit runs are committed together in the next
 * transaction (group commit), so the main thread never waits on SQLite and a burst of
 * collected samples costs one WAL append, not one per message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { History, type HistoryLimits, type StoredSample } from './history.js';
import type { WriterReply, WriterRequest } from './history-writer.js';

const { file, limits } = workerData as { file: string; limits: HistoryLimits };
const port = parentPort!;
let history: History;
try {
  history = History.open(file, limits);
} catch (error) {
  port.postMessage({ type: 'failed', message: String((error as Error)?.message ?? error) } satisfies WriterReply);
  process.exit(0);
}
port.postMessage({ type: 'ready', stats: { ...history.stats } } satisfies WriterReply);

let queued: WriterRequest[] = [];
let scheduled = false;
port.on('message', (request: WriterRequest) => {
  queued.push(request);
  if (!scheduled) (scheduled = true), setImmediate(flush);
});

/** Everything queued, in order: runs of inserts as one transaction each, the rest one by one. */
function flush(): void {
  scheduled = false;
  const requests = queued;
  queued = [];
  for (let i = 0; i < requests.length; ) {
    const request = requests[i]!;
    if (request.op !== 'insert') {
      run(request);
      i++;
      continue;
    }
    let end = i;
    while (end < requests.length && requests[end]!.op === 'insert') end++;
    commit(requests.slice(i, end) as Array<Extract<WriterRequest, { op: 'insert' }>>);
    i = end;
  }
}

function commit(inserts: Array<Extract<WriterRequest, { op: 'insert' }>>): void {
  const samples: StoredSample[] = inserts.flatMap((r) => r.samples);
  try {
    const outcomes = history.insertBatch(samples);
    let at = 0;
    for (const r of inserts) {
      reply({ type: 'done', id: r.id, outcomes: outcomes.slice(at, at + r.samples.length), stats: { ...history.stats } });
      at += r.samples.length;
    }
  } catch (error) {
    for (const r of inserts) fail(r.id, error);
  }
}

function run(request: Exclude<WriterRequest, { op: 'insert' }>): void {
  try {
    if (request.op === 'prune') reply({ type: 'done', id: request.id, pruned: history.prune(request.now), stats: { ...history.stats } });
    else if (request.op === 'inventory') {
      history.putInventory(request.device, request.inventory);
      reply({ type: 'done', id: request.id, stats: { ...history.stats } });
    } else {
      history.close();
      reply({ type: 'done', id: request.id, stats: { ...history.stats } });
      port.close();
    }
  } catch (error) {
    fail(request.id, error);
  }
}

function fail(id: number, error: unknown): void {
  const e = error as { message?: string; code?: string };
  reply({ type: 'error', id, message: String(e?.message ?? error), code: typeof e?.code === 'string' ? e.code : 'history_write' });
}

function reply(message: WriterReply): void {
  port.postMessage(message);
}
