// Collector ingest benchmark (npm run bench:collector): the agent in collector mode against a
// real mosquitto, DEVICES simulated devices each publishing one sample (VALUES values) every
// second for SECONDS s at QoS 1 (spread over the second; BURST=1: all at once), carried by
// CONNECTIONS MQTT connections (many device topics each). Prints: messages sent and stored, lost, the lag over time (first and last 10 s), the
// values stored per second, and a 24-hour series query (downsampled to <= 1,000 points, over
// HTTP) with >= 5 million values in the history. Targets: 0 lost, flat lag, p99 < 50 ms.
//
// The 24 hours of one device (`history-pi`, 60 keys x 86,400 s) are written into the state
// directory before the agent starts (PRELOAD=0 skips it).
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { agentNodeArgs, freePort, percentile, sleep, startMosquitto, until } from './support.mjs';

const DEVICES = Number(process.env.DEVICES ?? 1000);
const SECONDS = Number(process.env.SECONDS ?? 60);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 20);
const VALUES = Number(process.env.VALUES ?? 30);
const CATCHUP_S = Number(process.env.CATCHUP_S ?? 60);
const PRELOAD = process.env.PRELOAD !== '0';
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const dist = (file) => new URL(`../dist/src/monitor/${file}`, import.meta.url).href;
const fmt = (x, d = 2) => x.toFixed(d);
const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const metric = (text, name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);

/** 24 hours of one device at one sample a second, 60 keys: 5,184,000 values. */
async function preload(file) {
  const { History } = await import(dist('history.js'));
  const history = History.open(file, { retentionMs: 7 * 86_400_000, maxBytes: 4 * 1024 ** 3, maxDevices: 10, maxKeysPerDevice: 100 });
  const end = Date.now();
  const start = end - 86_400_000;
  const t0 = performance.now();
  let batch = [];
  for (let ts = start; ts < end; ts += 1000) {
    const i = (ts - start) / 1000;
    batch.push({
      device: 'history-pi',
      ts,
      values: Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`metric-${k}`, Math.sin(i / 600 + k) * 50 + 50])),
    });
    if (batch.length === 600) history.insertMany(batch), (batch = []);
  }
  history.insertMany(batch);
  const stored = history.stats.valuesStored;
  history.close();
  return { start, end, stored, seconds: (performance.now() - t0) / 1000 };
}

function startAgent(stateDir, brokerUrl, port) {
  const file = join(stateDir, 'config.json');
  const config = {
    thingName: 'collector',
    stateDir,
    mqtt: { url: brokerUrl },
    http: { port },
    monitor: { enabled: true, collect: true, intervalSeconds: 10, maxDevices: DEVICES + 10, maxHistoryBytes: 4 * 1024 ** 3 },
  };
  writeFileSync(file, JSON.stringify(config));
  const log = openSync(join(stateDir, 'agent.log'), 'w');
  return spawn(process.execPath, [...agentNodeArgs(), entry, 'run', '--config', file], { stdio: ['ignore', log, log] });
}

/** Every stored sample reaches /ws subscribers after its commit: now - ts is the lag, per second of the run. */
function watchLag(base, t0) {
  const perSecond = [];
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.type !== 'sample' || !frame.device.startsWith('dev-')) return;
    const second = Math.floor((frame.ts - t0) / 1000);
    (perSecond[second] ??= []).push(Date.now() - frame.ts);
  });
  const opened = new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { opened: opened.then(() => ws.send(JSON.stringify({ type: 'subscribe', monitor: '*' }))), perSecond, close: () => ws.close() };
}

/** Each device publishes once a second at its own offset in the second (BURST=1: all at the start of it). */
async function publishFor(clients, t0) {
  const values = Object.fromEntries(Array.from({ length: VALUES }, (_, i) => [`metric-${i}-percent`, i]));
  const perClient = Math.ceil(DEVICES / clients.length);
  const slices = process.env.BURST === '1' ? 1 : 20; // publishes go out in 20 slices of 50 ms
  let published = 0;
  let failed = 0;
  for (let s = 0; s < SECONDS; s++) {
    const ts = t0 + s * 1000;
    for (let slice = 0; slice < slices; slice++) {
      await sleep(Math.max(0, ts + (slice * 1000) / slices - Date.now()));
      const sentAt = Date.now(); // the sample's ts: the lag is measured from it
      for (let d = Math.floor((slice * DEVICES) / slices); d < Math.floor(((slice + 1) * DEVICES) / slices); d++) {
        const payload = JSON.stringify({ schema: 1, ts: sentAt, values });
        clients[Math.floor(d / perClient)].publishAsync(`devices/dev-${d}/monitoring`, payload, { qos: 1 }).then(
          () => published++,
          () => failed++,
        );
      }
    }
  }
  await until(() => published + failed === SECONDS * DEVICES, 'every publish acknowledged by the broker');
  return { published, failed };
}

async function seriesQueries(base, range) {
  const times = [];
  let points = 0;
  for (let q = 0; q < 200; q++) {
    const t = performance.now();
    const body = await (
      await fetch(`${base}/api/v1/monitor/devices/history-pi/series?key=metric-${q % 60}&from=${range.start}&to=${range.end}&points=1000`)
    ).json();
    times.push(performance.now() - t);
    points = body.points.length;
  }
  return { times, points };
}

const stateDir = mkdtempSync(join(tmpdir(), 'bench-collector-'));
console.log(
  `node ${process.version}; ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm).length} CPUs; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
);
const range = PRELOAD ? await preload(join(stateDir, 'monitor.db')) : undefined;
if (range) console.log(`preloaded 24 hours of history-pi: ${range.stored} values in ${fmt(range.seconds, 1)} s`);
// The collector's session at the broker: mosquitto's defaults hold 20 messages in flight and
// queue 1,000 more per client, then drop; a collector deployment raises both (docs/monitor.md).
// BROKER_DEFAULTS=1 keeps mosquitto's defaults.
const brokerLines = process.env.BROKER_DEFAULTS === '1' ? [] : ['max_inflight_messages 1000', 'max_queued_messages 100000'];
const broker = await startMosquitto(brokerLines);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const agent = startAgent(stateDir, broker.url, port);
await until(() => fetch(`${base}/health`).then((r) => r.ok), 'collector healthy');
await until(
  async () => (await (await fetch(`${base}/api/v1/state`)).json()).tree.children.find((c) => c.id === 'monitor')?.context.collector.state === 'subscribed',
  'collector subscribed',
);
const clients = await Promise.all(
  Array.from({ length: CONNECTIONS }, (_, i) => mqtt.connectAsync(broker.url, { clientId: `bench-pub-${i}`, reconnectPeriod: 0 })),
);
const t0 = Math.ceil(Date.now() / 1000) * 1000 + 1000;
const lag = watchLag(base, t0);
await lag.opened;
const storedBefore = metric(await (await fetch(`${base}/metrics`)).text(), 'edgevisor_monitor_values_stored_total');
const cpuStart = cpuOf(agent.pid);
const { published, failed } = await publishFor(clients, t0);
const sendEnd = Date.now();
// Caught up: every published sample reached the history (and /ws).
const deadline = Date.now() + CATCHUP_S * 1000;
const received = () => lag.perSecond.reduce((n, xs) => n + (xs?.length ?? 0), 0);
while (Date.now() < deadline && received() < published) await sleep(200);
const caughtUp = Date.now();
const cpu = cpuOf(agent.pid) - cpuStart;
const metrics = await (await fetch(`${base}/metrics`)).text();
const valuesStored = metric(metrics, 'edgevisor_monitor_values_stored_total') - storedBefore;
const query = range ? await seriesQueries(base, range) : undefined;
lag.close();
await Promise.all(clients.map((c) => c.endAsync()));
agent.kill('SIGTERM');
await new Promise((r) => agent.once('exit', r));
broker.stop();

const db = new Database(join(stateDir, 'monitor.db'), { readonly: true });
const samplesStored = db
  .prepare(
    "SELECT count(*) FROM points p JOIN series s ON s.id = p.series_id JOIN devices d ON d.id = s.device_id WHERE d.name LIKE 'dev-%' AND s.key = 'metric-0-percent'",
  )
  .pluck()
  .get();
const totalValues = db.prepare('SELECT count(*) FROM points').pluck().get();
db.close();
const lagOf = (from, to) => lag.perSecond.slice(from, to).flatMap((xs) => xs ?? []);
const first = lagOf(0, 10);
const last = lagOf(SECONDS - 10, SECONDS);
const wallS = (caughtUp - t0) / 1000;
console.log(
  `\ncollector ingest: ${DEVICES} devices x 1 sample/s (${VALUES} values) for ${SECONDS} s, QoS 1, over ${CONNECTIONS} MQTT connections, mosquitto on loopback (${brokerLines.join(', ') || 'its defaults: 20 in flight, 1,000 queued per client'})`,
);
console.log(`| what | figure | target |`);
console.log(`| --- | --- | --- |`);
console.log(`| samples published (PUBACK from the broker) | ${published} (publish failures ${failed}) | |`);
console.log(`| samples stored (rows in the history) | ${samplesStored} | |`);
console.log(`| lost | ${published - samplesStored} | 0 |`);
console.log(`| lag (sample ts to /ws after the commit), first 10 s | p50 ${percentile(first, 50)} ms, p99 ${percentile(first, 99)} ms | |`);
console.log(`| lag, last 10 s | p50 ${percentile(last, 50)} ms, p99 ${percentile(last, 99)} ms | flat |`);
console.log(
  `| caught up | ${received() >= published ? `yes, ${caughtUp - sendEnd} ms after the last publish` : `NO: ${received()} of ${published} after ${CATCHUP_S} s`} | |`,
);
console.log(`| values stored per second | ${Math.round(valuesStored / wallS)} (${valuesStored} in ${fmt(wallS, 1)} s) | |`);
console.log(`| agent CPU during ingest | ${fmt((cpu / wallS) * 100)} % of a core | |`);
console.log(
  `collector: messages ${metric(metrics, 'edgevisor_monitor_collector_messages_total')}, rejects ${metric(metrics, 'edgevisor_monitor_collector_rejects_total')}, store failures ${metric(metrics, 'edgevisor_monitor_collector_store_failures_total')}; the agent's log: ${join(stateDir, 'agent.log')}`,
);
console.log(`lag p50 per second: ${lag.perSecond.map((xs) => (xs ? percentile(xs, 50) : '-')).join(' ')}`);
if (query) {
  console.log(
    `| 24-hour series of history-pi over HTTP, ${totalValues} values in the history, ${query.points} points | p50 ${fmt(percentile(query.times, 50))} ms, p99 ${fmt(percentile(query.times, 99))} ms (200 queries) | p99 < 50 ms |`,
  );
}
process.exit(0);
