// /ws abuse benchmark (issue 12): what one hostile or sluggish client costs everyone else.
//   flood:    one client sends 5,000 {"type":"state"} at once, over a tree with ~250 firmware
//             entries; figures: the longest /health answer meanwhile (the event loop blocked),
//             and the trees the client got back.
//   sluggish: POST /api/v1/publish as fast as 16 callers can, with no /ws client and then with
//             CLIENTS (500) clients that never read; figures: publish rate with them / without
//             them, and the longest /health answer.
// Run: npm run build && node bench/ws.mjs
//   AGENT=path/to/main.js runs another build (the code before the fix, say);
//   AGENT_HTTP='{"wsMaxClients":1000}' adds http keys (the default cap is 100 clients).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { agentNodeArgs, freePort, percentile, sleep, startMosquitto, until } from './support.mjs';

const entry = process.env.AGENT ?? new URL('../dist/bundle/main.js', import.meta.url).pathname;
const CLIENTS = Number(process.env.CLIENTS ?? 500);
const PUBLISH_SECONDS = Number(process.env.PUBLISH_SECONDS ?? 5);
const extraHttp = JSON.parse(process.env.AGENT_HTTP ?? '{}');

/** docker-registry on a loopback port: unknown repositories answer NAME_UNKNOWN (a negative entry each). */
async function startRegistry() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-registry-'));
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { env: {}, stdio: 'ignore' });
  await until(() => fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok), 'docker-registry');
  return { host: `127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function startAgent(mqttUrl, registryHost) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-ws-'));
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      thingName: 'bench-ws',
      stateDir: join(dir, 'state'),
      log: { level: 'warn' },
      mqtt: { url: mqttUrl },
      http: { port, ...extraHttp },
      outbox: { maxMessages: 1_000_000, maxBytes: 512 * 1024 * 1024 },
      firmware: { enabled: true, freshnessSeconds: 3600, registry: { url: registryHost, insecure: true } },
    }),
  );
  const child = spawn(process.execPath, [...agentNodeArgs(), entry, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await until(() => fetch(`${base}/health`).then((r) => r.status === 200), 'agent healthy');
  return { base, port, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

/** CPU seconds the agent has used (user + system), from /proc: the machine's load does not skew it. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The agent's longest event-loop delay since the last call (prom-client resets it on each scrape), in ms. */
async function loopLagMs(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text)?.[1]) * 1000;
}

/** GET /health every 10 ms until stopped: its slowest answers show how long the event loop was held. */
function probe(base) {
  const times = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const start = performance.now();
      await fetch(`${base}/health`)
        .then((r) => r.arrayBuffer())
        .catch(() => {});
      times.push(performance.now() - start);
      await sleep(10);
    }
  })();
  return async () => {
    running = false;
    await done;
    return { max: Math.max(...times), p99: percentile(times, 99) };
  };
}

function open(url) {
  const ws = new WebSocket(url);
  return new Promise((resolve) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', () => resolve(undefined));
    ws.once('unexpected-response', (_req, res) => (res.resume(), resolve(undefined)));
  });
}

async function flood(agent) {
  const ws = await open(`ws://127.0.0.1:${agent.port}/ws`);
  let trees = 0;
  let last = performance.now();
  ws.on('message', (data) => {
    last = performance.now();
    if (String(data).startsWith('{"type":"state"')) trees++;
  });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  await sleep(200);
  await loopLagMs(agent.base);
  const cpu = cpuSeconds(agent.pid);
  const stopProbe = probe(agent.base);
  const start = performance.now();
  for (let i = 0; i < 5000; i++) ws.send('{"type":"state"}');
  let code = 'open';
  // Answered in full, closed, or nothing more for 5 s (an agent busy with the flood sends nothing meanwhile).
  while (code === 'open' && trees < 5001 && performance.now() - last < 5000) await Promise.race([closed.then((c) => (code = c)), sleep(100)]);
  const seconds = (Math.min(performance.now(), last) - start) / 1000;
  const loop = await stopProbe();
  const used = cpuSeconds(agent.pid) - cpu;
  const lag = await loopLagMs(agent.base);
  ws.terminate();
  // The next phase starts once the agent answers again.
  await until(async () => {
    const t = performance.now();
    await fetch(`${agent.base}/health`);
    return performance.now() - t < 50;
  }, 'agent responsive');
  return { trees: trees - 1, code, seconds, loop, cpu: used, lag };
}

async function publishRate(agent) {
  let sent = 0;
  let failed = 0;
  const deadline = performance.now() + PUBLISH_SECONDS * 1000;
  const body = JSON.stringify({ topic: 'bench/ws', payload: 'x'.repeat(256) });
  const caller = async () => {
    while (performance.now() < deadline) {
      try {
        const r = await fetch(`${agent.base}/api/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await r.arrayBuffer();
        if (r.status === 202) sent++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await loopLagMs(agent.base);
  const cpu = cpuSeconds(agent.pid);
  const stopProbe = probe(agent.base);
  await Promise.all(Array.from({ length: 16 }, caller));
  const cpuPerMessageMs = ((cpuSeconds(agent.pid) - cpu) / sent) * 1000;
  return { rate: sent / PUBLISH_SECONDS, failed, cpuPerMessageMs, lag: await loopLagMs(agent.base), loop: await stopProbe() };
}

async function sluggish(agent) {
  const alone = await publishRate(agent);
  const sockets = [];
  for (let i = 0; i < CLIENTS; i++) {
    const ws = await open(`ws://127.0.0.1:${agent.port}/ws`);
    if (!ws) continue;
    ws._socket.pause(); // never reads again
    sockets.push(ws);
  }
  const withClients = await publishRate(agent);
  const stillOpen = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of sockets) ws.terminate();
  return { alone, withClients, connected: sockets.length, stillOpen };
}

const mosquitto = await startMosquitto();
const registry = await startRegistry();
const agent = await startAgent(mosquitto.url, registry.host);
try {
  for (let i = 0; i < Number(process.env.UNKNOWN_IDS ?? 300); i++) await fetch(`${agent.base}/version?device=nobody-${i}`).then((r) => r.arrayBuffer());
  const state = await (await fetch(`${agent.base}/api/v1/state`)).text();
  console.log(`agent: ${entry}\ntree: ${state.length} bytes of JSON`);
  const f = process.env.SKIP_FLOOD ? undefined : await flood(agent);
  if (f)
    console.log(
      `flood: 5,000 state requests -> ${f.trees} trees sent, socket ${f.code === 'open' ? 'left open' : `closed ${f.code}`}, ${f.seconds.toFixed(2)} s; agent CPU ${f.cpu.toFixed(2)} s; event loop held ${f.lag.toFixed(0)} ms at most; /health slowest ${f.loop.max.toFixed(0)} ms`,
    );
  const s = await sluggish(agent);
  console.log(
    `publish alone: ${s.alone.rate.toFixed(0)} msg/s (${s.alone.failed} failed), agent CPU ${s.alone.cpuPerMessageMs.toFixed(2)} ms/msg; event loop held ${s.alone.lag.toFixed(0)} ms at most; /health slowest ${s.alone.loop.max.toFixed(0)} ms`,
  );
  console.log(
    `publish with ${s.connected} of ${CLIENTS} non-reading clients connected (${s.stillOpen} still open at the end): ${s.withClients.rate.toFixed(0)} msg/s (${s.withClients.failed} failed) = ${(s.withClients.rate / s.alone.rate).toFixed(2)}x, agent CPU ${s.withClients.cpuPerMessageMs.toFixed(2)} ms/msg = ${(s.withClients.cpuPerMessageMs / s.alone.cpuPerMessageMs).toFixed(2)}x; event loop held ${s.withClients.lag.toFixed(0)} ms at most; /health slowest ${s.withClients.loop.max.toFixed(0)} ms`,
  );
} finally {
  agent.stop();
  registry.stop();
  mosquitto.stop();
}
