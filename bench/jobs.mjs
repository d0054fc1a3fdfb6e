// Jobs benchmark: latency from notify-next to the terminal update for a /bin/true job, p50/p99
// over 200 sequential jobs, next to the floor measured in the same run: one MQTT
// request/answer round trip on the same broker plus one bare spawn of /bin/true.
// Run: npm run bench:jobs   (builds first; needs mosquitto)
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { freePort, percentile, sleep, startMosquitto } from './support.mjs';

const JOBS = Number(process.env.JOBS ?? 200);
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const { LocalJobsService } = await import('../dist/scripts/jobs-service.js');

const broker = await startMosquitto();
const url = broker.url;
const dir = mkdtempSync(join(tmpdir(), 'bench-jobs-'));
const pct = percentile;

try {
  // Floor, part 1: a request/answer round trip between two mqtt.js clients (Nagle off).
  const responder = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const asker = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  for (const c of [responder, asker]) c.stream.setNoDelay(true);
  await responder.subscribeAsync('bench/req', { qos: 1 });
  responder.on('message', (_t, p) => responder.publish('bench/res', p, { qos: 1 }));
  await asker.subscribeAsync('bench/res', { qos: 1 });
  const roundTrips = [];
  for (let i = 0; i < JOBS; i++) {
    const t0 = performance.now();
    await new Promise((resolve) => {
      asker.once('message', resolve);
      asker.publish('bench/req', String(i), { qos: 1 });
    });
    roundTrips.push(performance.now() - t0);
  }
  await Promise.all([responder.endAsync(), asker.endAsync()]);
  // Floor, part 2: a bare spawn of /bin/true until it exits.
  const spawns = [];
  for (let i = 0; i < JOBS; i++) {
    const t0 = performance.now();
    await new Promise((resolve) => spawn('/bin/true').once('exit', resolve));
    spawns.push(performance.now() - t0);
  }

  // The agent, with the local jobs service on the same broker.
  const service = await LocalJobsService.start(url);
  const httpPort = await freePort();
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ thingName: 'bench', stateDir: join(dir, 'state'), mqtt: { url }, http: { port: httpPort }, jobs: { enabled: true, allowlist: ['/bin/true'] }, log: { level: 'warn' } }));
  const agent = spawn(process.execPath, [entry, 'run', '--config', config], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    const ok = await fetch(`http://127.0.0.1:${httpPort}/health`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await sleep(20);
  }
  const doc = { version: '1.0', steps: [{ action: { name: 'true', type: 'runCommand', input: { command: '/bin/true' } } }] };
  const latencies = [];
  // Woken by the service's own update, as the floor's round trips are by their answers: a
  // polling loop here would take one of the box's cores away from the agent and the broker.
  let wake = () => {};
  service.onUpdate(() => wake());
  for (let i = 0; i < JOBS; i++) {
    const t0 = performance.now();
    const e = service.createJob('bench', `job-${i}`, doc);
    while (e.status !== 'SUCCEEDED' && e.status !== 'FAILED' && e.status !== 'REJECTED') await new Promise((r) => (wake = r));
    latencies.push(performance.now() - t0);
  }
  agent.kill('SIGTERM');
  await service.stop();

  const floor50 = pct(roundTrips, 50) + pct(spawns, 50);
  const floor99 = pct(roundTrips, 99) + pct(spawns, 99);
  const f = (n) => n.toFixed(2).padStart(7);
  console.log(`node ${process.version}; ${JOBS} sequential jobs, mosquitto on loopback\n`);
  console.log('| figure | p50 ms | p99 ms |');
  console.log('| --- | --- | --- |');
  console.log(`| MQTT QoS 1 request/answer round trip | ${f(pct(roundTrips, 50))} | ${f(pct(roundTrips, 99))} |`);
  console.log(`| bare spawn of /bin/true until exit | ${f(pct(spawns, 50))} | ${f(pct(spawns, 99))} |`);
  console.log(`| floor (round trip + spawn) | ${f(floor50)} | ${f(floor99)} |`);
  console.log(`| edgevisor: notify-next to terminal update | ${f(pct(latencies, 50))} | ${f(pct(latencies, 99))} |`);
  console.log(`| ratio to the floor | ${(pct(latencies, 50) / floor50).toFixed(2)}x | ${(pct(latencies, 99) / floor99).toFixed(2)}x |`);
} finally {
  broker.stop();
}
