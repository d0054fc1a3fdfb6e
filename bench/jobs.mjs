// Jobs benchmark: latency from notify-next to the terminal update for a /bin/true job, p50/p99
// over bursts of 200 sequential jobs, for each launcher (config jobs.launcher: child_process,
// the default, and posix_spawn when npm run build:native built it), side by side, each next to
// the floor measured just before it in the same run: one MQTT request/answer round trip on the same broker plus one bare spawn of
// /bin/true. Rounds alternate floor and burst; the first burst meets a freshly started agent
// (its code not yet compiled by V8's optimiser), later ones an agent that has run jobs before.
// Run: npm run bench:jobs   (builds first; needs mosquitto)
// Env: JOBS (per burst, default 200), ROUNDS (default 3), TRACE=1 (where the time goes),
// AGENT_NODE_ARGS (flags for the agent's node only, say --cpu-prof --cpu-prof-dir=DIR).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { agentNodeArgs, freePort, median, percentile as pct, sleep, startMosquitto, until } from './support.mjs';

const JOBS = Number(process.env.JOBS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const { LocalJobsService } = await import('../dist/scripts/jobs-service.js');

const broker = await startMosquitto();
const url = broker.url;
const dir = mkdtempSync(join(tmpdir(), 'bench-jobs-'));
const f = (n) => n.toFixed(2).padStart(6);

/** The floor's two parts, JOBS times each: a request/answer between two mqtt.js clients (Nagle off), a bare spawn until exit. */
async function measureFloor(asker) {
  const roundTrips = [];
  for (let i = 0; i < JOBS; i++) {
    const t0 = performance.now();
    await new Promise((resolve) => {
      asker.once('message', resolve);
      asker.publish('bench/req', String(i), { qos: 1 });
    });
    roundTrips.push(performance.now() - t0);
  }
  const spawns = [];
  for (let i = 0; i < JOBS; i++) {
    const t0 = performance.now();
    await new Promise((resolve) => spawn('/bin/true').once('exit', resolve));
    spawns.push(performance.now() - t0);
  }
  return { p50: pct(roundTrips, 50) + pct(spawns, 50), p99: pct(roundTrips, 99) + pct(spawns, 99), roundTrips, spawns };
}

// TRACE=1: a third client on the jobs topics stamps each message of each job, to show where
// the time goes (it adds the broker a subscriber, so the totals are a little slower).
const trace = new Map();
async function startTrace() {
  const sniffer = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  sniffer.stream.setNoDelay(true);
  await sniffer.subscribeAsync('$aws/things/+/jobs/#', { qos: 0 });
  sniffer.on('message', (topic, payload) => {
    const t = performance.now();
    const body = JSON.parse(payload.toString());
    const id = body.execution?.jobId ?? /jobs\/([^/$]+)\/update/.exec(topic)?.[1];
    if (!id || !trace.has(id)) return;
    const kind = topic.endsWith('notify-next')
      ? 'notify'
      : topic.endsWith('/update')
        ? `update ${body.status}`
        : topic.endsWith('update/accepted')
          ? 'accepted'
          : undefined;
    if (kind && !(kind in trace.get(id))) trace.get(id)[kind] = t;
  });
  return sniffer;
}

/** JOBS sequential jobs, each created as soon as the previous one's terminal update reached the service. */
async function burst(service, round, thing) {
  const doc = { version: '1.0', steps: [{ action: { name: 'true', type: 'runCommand', input: { command: '/bin/true' } } }] };
  const latencies = [];
  // Woken by the service's own update, as the floor's round trips are by their answers: a
  // polling loop here would take one of the box's cores away from the agent and the broker.
  let wake = () => {};
  const off = service.onUpdate(() => wake());
  for (let i = 0; i < JOBS; i++) {
    const id = `job-${thing}-${round}-${i}`;
    const t0 = performance.now();
    trace.set(id, { created: t0 });
    const e = service.createJob(thing, id, doc);
    while (e.status !== 'SUCCEEDED' && e.status !== 'FAILED' && e.status !== 'REJECTED') await new Promise((r) => (wake = r));
    latencies.push(performance.now() - t0);
    trace.get(id).seen = performance.now();
  }
  off();
  return { p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

const agents = [];
/** An agent for one launcher, on a thing of its own, with the local jobs service on the same broker. */
async function startAgent(launcher) {
  const httpPort = await freePort();
  const config = join(dir, `config-${launcher}.json`);
  const thing = `bench-${launcher.replace('_', '-')}`;
  writeFileSync(
    config,
    JSON.stringify({
      thingName: thing,
      stateDir: join(dir, `state-${launcher}`),
      mqtt: { url },
      http: { port: httpPort },
      jobs: { enabled: true, allowlist: ['/bin/true'], launcher },
      log: { level: 'warn' },
    }),
  );
  const nodeArgs = agentNodeArgs();
  const child = spawn(process.execPath, [...nodeArgs, entry, 'run', '--config', config], {
    stdio: ['ignore', nodeArgs.length > 0 ? 'inherit' : 'ignore', 'inherit'],
  });
  agents.push(child);
  await until(async () => (await fetch(`http://127.0.0.1:${httpPort}/health`)).ok, `the agent (${launcher})`);
  return { launcher, thing };
}

try {
  const responder = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const asker = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  for (const c of [responder, asker]) c.stream.setNoDelay(true);
  await responder.subscribeAsync('bench/req', { qos: 1 });
  responder.on('message', (_t, p) => responder.publish('bench/res', p, { qos: 1 }));
  await asker.subscribeAsync('bench/res', { qos: 1 });

  const service = await LocalJobsService.start(url);
  const built = existsSync(new URL('../dist/native/spawn.node', import.meta.url));
  if (!built) console.log('posix_spawn: dist/native/spawn.node is not built (npm run build:native); measuring child_process only\n');
  const launchers = [];
  for (const launcher of built ? ['child_process', 'posix_spawn'] : ['child_process']) launchers.push(await startAgent(launcher));
  // Past its start-up work (connect, subscribe, first ask), so that the first floor is not measured beside it.
  await sleep(2000);
  const sniffer = process.env.TRACE === '1' ? await startTrace() : undefined;

  console.log(
    `node ${process.version}; ${ROUNDS} rounds of ${JOBS} sequential jobs per launcher, mosquitto on loopback; floor = MQTT QoS 1 round trip + bare spawn of /bin/true until exit\n`,
  );
  console.log('| round | launcher | floor p50 / p99 ms | edgevisor p50 / p99 ms | ratio p50 | ratio p99 |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const ratios = Object.fromEntries(launchers.map((l) => [l.launcher, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    // the launchers alternate which goes first, each right after a floor of its own
    for (const { launcher, thing } of round % 2 ? launchers : [...launchers].reverse()) {
      const floor = await measureFloor(asker);
      const ours = await burst(service, round, thing);
      ratios[launcher].push({ p50: ours.p50 / floor.p50, p99: ours.p99 / floor.p99 });
      const label = round === 1 ? '1 (agents just started)' : String(round);
      console.log(
        `| ${label} | ${launcher} | ${f(floor.p50)} / ${f(floor.p99)} | ${f(ours.p50)} / ${f(ours.p99)} | ${ratios[launcher].at(-1).p50.toFixed(2)}x | ${ratios[launcher].at(-1).p99.toFixed(2)}x |`,
      );
    }
  }
  console.log('\n| launcher | median ratio p50 | median ratio p99 | goal p99 <= 2x |\n| --- | --- | --- | --- |');
  for (const { launcher } of launchers) {
    const p99 = median(ratios[launcher].map((r) => r.p99));
    console.log(`| ${launcher} | ${median(ratios[launcher].map((r) => r.p50)).toFixed(2)}x | ${p99.toFixed(2)}x | ${p99 <= 2 ? 'met' : 'NOT met'} |`);
  }
  await Promise.all([responder.endAsync(), asker.endAsync(), sniffer?.endAsync()]);
  await service.stop();

  if (sniffer) {
    const marks = ['created', 'notify', 'update IN_PROGRESS', 'accepted', 'update SUCCEEDED', 'seen'];
    console.log('\n| segment (TRACE, all rounds) | p50 ms | p99 ms |\n| --- | --- | --- |');
    for (let k = 1; k < marks.length; k++) {
      const xs = [...trace.values()].map((t) => t[marks[k]] - t[marks[k - 1]]).filter((x) => Number.isFinite(x));
      console.log(`| ${marks[k - 1]} -> ${marks[k]} | ${f(pct(xs, 50))} | ${f(pct(xs, 99))} |`);
    }
  }
} finally {
  for (const agent of agents) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
  }
  broker.stop();
}
