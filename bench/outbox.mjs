// Outbox benchmark, each figure next to a reference measured in the same run against the
// same mosquitto: raw mqtt.js QoS 1 publishing (pipelined, every PUBACK awaited).
//   durable enqueue rate      vs raw QoS 1 publish rate   (goal >= 1)
//   replay rate after outage  vs raw QoS 1 publish rate   (goal >= 0.8)
//   bytes written per payload byte                        (goal <= 2)
// Run: npm run bench:outbox   (builds first; needs mosquitto; about a minute)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Drainer } from '../dist/src/outbox/drainer.js';
import { Outbox } from '../dist/src/outbox/queue.js';
import { median, startMosquitto } from './support.mjs';

const N = Number(process.env.MESSAGES ?? 20_000);
const RUNS = Number(process.env.RUNS ?? 3);
const PAYLOAD = Buffer.alloc(Number(process.env.PAYLOAD_BYTES ?? 1024), 'x');
const IN_FLIGHT = 256;
const limits = { maxMessages: N * 2, maxBytes: N * (PAYLOAD.length + 64) * 2, overflow: 'dropOldest', segmentBytes: 4 * 1024 * 1024 };

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;
const diskWrites = () => Number(/write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

async function connect(url) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, clientId: `bench-${Math.random().toString(16).slice(2)}` });
  client.stream.setNoDelay(true);
  return client;
}

/** Reference: mqtt.js publishing N QoS 1 messages with at most IN_FLIGHT awaiting PUBACK. */
async function rawQos1(url) {
  const client = await connect(url);
  const start = process.hrtime.bigint();
  await new Promise((resolve) => {
    let sent = 0;
    let acked = 0;
    const pump = () => {
      while (sent < N && sent - acked < IN_FLIGHT) {
        sent++;
        client.publish('bench/raw', PAYLOAD, { qos: 1 }, () => {
          if (++acked === N) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const rate = N / seconds(start);
  await client.endAsync();
  return rate;
}

/** Durable enqueue: N messages offered by concurrent producers, each resolved once on disk. */
async function enqueueRate() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-outbox-'));
  const outbox = await Outbox.open(dir, limits);
  const diskBefore = diskWrites();
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, N - i) }, () => outbox.enqueue({ topic: 'bench/outbox', payload: PAYLOAD, qos: 1, retain: false })));
  }
  const rate = N / seconds(start);
  return { rate, outbox, dir, diskBefore };
}

/** Replay: the queue filled during an "outage" drains to the broker once the link is up. */
async function replayRate(url, outbox) {
  const client = await connect(url);
  const drainer = new Drainer(outbox, IN_FLIGHT);
  const start = process.hrtime.bigint();
  await new Promise((resolve) => {
    const check = () => outbox.stats().depth === 0 && (outbox.off('change', check), resolve());
    outbox.on('change', check);
    drainer.start(client);
  });
  const rate = N / seconds(start);
  drainer.stop();
  await client.endAsync();
  return rate;
}

/** One message at a time, each awaited: the latency-bound worst case (one fsync each). */
async function sequentialEnqueueRate() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-outbox-seq-'));
  const outbox = await Outbox.open(dir, limits);
  const count = Math.min(N, 2000);
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await outbox.enqueue({ topic: 'bench/outbox', payload: PAYLOAD, qos: 1, retain: false });
  const rate = count / seconds(start);
  await outbox.close();
  rmSync(dir, { recursive: true });
  return rate;
}

const broker = await startMosquitto();
const rows = { raw: [], enqueue: [], replay: [], sequential: [], amplification: [], diskAmplification: [] };
try {
  for (let run = 0; run < RUNS; run++) {
    rows.raw.push(await rawQos1(broker.url));
    const { rate, outbox, dir, diskBefore } = await enqueueRate();
    rows.enqueue.push(rate);
    rows.replay.push(await replayRate(broker.url, outbox));
    await outbox.close();
    const stats = outbox.stats();
    rows.amplification.push(stats.bytesWritten / stats.payloadBytes);
    rows.diskAmplification.push((diskWrites() - diskBefore) / stats.payloadBytes);
    rmSync(dir, { recursive: true });
    rows.sequential.push(await sequentialEnqueueRate());
  }
} finally {
  broker.stop();
}

const raw = median(rows.raw);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
console.log(`node ${process.version}; ${N.toLocaleString('en-US')} messages of ${PAYLOAD.length} B, QoS 1, ${IN_FLIGHT} in flight; medians of ${RUNS} runs\n`);
console.log('| figure | value | reference | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(`| raw mqtt.js QoS 1 publish to mosquitto (reference) | ${fmt(raw)} msg/s | | |`);
console.log(
  `| durable enqueue (group commit, concurrent producers) | ${fmt(median(rows.enqueue))} msg/s | ${fmt(raw)} msg/s | ${(median(rows.enqueue) / raw).toFixed(2)}x |`,
);
console.log(`| replay after an outage, to mosquitto | ${fmt(median(rows.replay))} msg/s | ${fmt(raw)} msg/s | ${(median(rows.replay) / raw).toFixed(2)}x |`);
console.log(`| bytes written by the log per payload byte (messages + acks) | ${median(rows.amplification).toFixed(3)} | | |`);
const disk = median(rows.diskAmplification);
console.log(
  `| bytes the kernel wrote to disk per payload byte (/proc/self/io) | ${Number.isFinite(disk) && disk > 0 ? disk.toFixed(3) : 'n/a (not accounted here)'} | | |`,
);
console.log(`| enqueue one at a time, each awaited (fsync-bound) | ${fmt(median(rows.sequential))} msg/s | | |`);
