// Start-up benchmark: time from process start to /health 200, and idle RSS after 10 s,
// next to a bare `node` that imports the same dependencies and idles (the reference).
// Run: npm run bench:startup   (builds first; takes about a minute)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { freePort, median, sleep } from './support.mjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = Number(process.env.RUNS ?? 3);
const IDLE_MS = Number(process.env.IDLE_MS ?? 10_000);
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const deps = ['xstate', 'mqtt', 'hono', '@hono/node-server', 'ws', 'pino', 'zod', 'prom-client', 'yaml', 'aedes'];
const reference = `await Promise.all(${JSON.stringify(deps)}.map((d) => import(d))); console.log('ready'); setInterval(() => {}, 1 << 30);`;

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** The agent on its embedded defaults (own broker, own API), on free ports. */
async function measureAgent() {
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [entry, 'run'], {
    cwd: mkdtempSync(join(tmpdir(), 'edgevisor-bench-')),
    env: { PATH: process.env.PATH, EDGEVISOR_MQTT__EMBEDDED_PORT: String(mqttPort), EDGEVISOR_HTTP__PORT: String(httpPort), EDGEVISOR_LOG__LEVEL: 'warn' },
    stdio: 'ignore',
  });
  let readyMs;
  for (let i = 0; i < 2000 && readyMs === undefined; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/health`);
      if (res.status === 200) readyMs = Number(process.hrtime.bigint() - started) / 1e6;
    } catch {}
    if (readyMs === undefined) await sleep(2);
  }
  if (readyMs === undefined) throw new Error('agent never became healthy');
  await sleep(IDLE_MS);
  const rss = rssMiB(child.pid);
  await stop(child);
  return { readyMs, rss };
}

/** Bare node importing the same packages, then idling. */
async function measureReference(source) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const readyMs = Number(process.hrtime.bigint() - started) / 1e6;
  await sleep(IDLE_MS);
  const rss = rssMiB(child.pid);
  await stop(child);
  return { readyMs, rss };
}

const results = { agent: [], reference: [], bare: [] };
for (let run = 0; run < RUNS; run++) {
  results.reference.push(await measureReference(reference));
  results.bare.push(await measureReference(`console.log('ready'); setInterval(() => {}, 1 << 30);`));
  results.agent.push(await measureAgent());
}
const row = (name, xs, ref) => {
  const ready = median(xs.map((x) => x.readyMs));
  const rss = median(xs.map((x) => x.rss));
  const ratio = ref ? `${(ready / median(ref.map((x) => x.readyMs))).toFixed(2)}x / ${(rss / median(ref.map((x) => x.rss))).toFixed(2)}x` : '-';
  return `| ${name.padEnd(44)} | ${ready.toFixed(0).padStart(8)} | ${rss.toFixed(1).padStart(12)} | ${ratio.padStart(15)} |`;
};
console.log(`node ${process.version}, ${RUNS} runs, medians; RSS read ${IDLE_MS / 1000} s after ready\n`);
console.log('| process                                      | ready ms | idle RSS MiB | vs reference    |');
console.log('| -------------------------------------------- | -------- | ------------ | --------------- |');
console.log(row('bare node', results.bare));
console.log(row('reference: node importing the same packages', results.reference));
console.log(row('edgevisor, embedded defaults (to /health 200)', results.agent, results.reference));
