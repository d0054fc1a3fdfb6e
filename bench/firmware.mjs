// Firmware benchmark: the agent serving a cached 1 MiB firmware (/firmware) and its /version,
// next to nginx (1 worker, sendfile) serving the same 1 MiB file and a small file of the same
// bytes as /version, in the same run. wrk with 32 and 64 connections; then a paced client at a
// fixed rate (wrk2 is not in Debian) for /version latency percentiles, corrected for
// coordinated omission (latency counted from when each request was due).
// Run: npm run bench:firmware   (builds first; needs docker-registry, nginx, wrk, mosquitto)
// Env: DURATION (wrk seconds per round, default 5), ROUNDS (default 3), RATE (paced req/s, default 2000), PACED_SECONDS (default 5).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, median, percentile, sleep, startMosquitto, until } from './support.mjs';

const DURATION = Number(process.env.DURATION ?? 5);
const RATE = Number(process.env.RATE ?? 2000);
const PACED_SECONDS = Number(process.env.PACED_SECONDS ?? 5);
// Rounds alternate edgevisor and nginx, and medians are reported: a shared 2-core machine is noisy.
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const { RegistryClient } = await import('../dist/src/firmware/registry.js');
const { pushFirmware } = await import('../dist/src/firmware/push.js');
const run = promisify(execFile);
// PIN=1: servers on CPU 0, the load generators on CPU 1. Off by default: on a shared 2-core box
// other load then lands on the servers' core and the figures got worse, not steadier.
const PIN = process.env.PIN === '1' && availableParallelism() >= 2;
const onServerCpu = (cmd, args) => (PIN ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args]);
const dir = mkdtempSync(join(tmpdir(), 'bench-firmware-'));
const children = [];

async function startRegistry() {
  const port = await freePort();
  const config = join(dir, 'registry.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  // A clean environment: docker-registry reads any REGISTRY_* variable as configuration.
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { env: {}, stdio: 'ignore' });
  children.push(child);
  await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/`)).ok, 'docker-registry');
  return `127.0.0.1:${port}`;
}

async function startNginx(files) {
  const port = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'www'), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(prefix, 'www', name), bytes);
  const conf = join(prefix, 'nginx.conf');
  // As root, nginx's worker would drop to "nobody", which cannot read this temporary directory: run as the current user.
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server { listen 127.0.0.1:${port}; root ${prefix}/www; }
}
`,
  );
  const child = spawn(...onServerCpu('/usr/sbin/nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')]), { stdio: 'ignore' });
  children.push(child);
  await until(async () => (await fetch(`http://127.0.0.1:${port}/version.txt`)).ok, 'nginx');
  return `http://127.0.0.1:${port}`;
}

async function wrk(url, connections) {
  const args = ['-t2', `-c${connections}`, `-d${DURATION}s`, '--latency', url];
  const { stdout } = await (PIN ? run('taskset', ['-c', '1', 'wrk', ...args], { maxBuffer: 1 << 20 }) : run('wrk', args, { maxBuffer: 1 << 20 }));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const unit = (v, u) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[u] ?? 1);
  const p99m = /99%\s+([\d.]+)(us|ms|s)/.exec(stdout);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? '0';
  return { rps, p99: p99m ? unit(p99m[1], p99m[2]) : NaN, errors: Number(errors) };
}

/** Requests at a fixed rate over keep-alive connections; latency from each request's due time. */
async function paced(url, rate, seconds) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const { hostname, port, pathname, search } = new URL(url);
  const total = rate * seconds;
  const latencies = [];
  let failures = 0;
  const start = performance.now() + 50;
  await new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + (sent * 1000) / rate <= now) {
        const due = start + (sent * 1000) / rate;
        sent++;
        const req = request({ hostname, port, path: pathname + search, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - due);
            if (res.statusCode !== 200) failures++;
            if (++done === total) resolve();
          });
        });
        req.on('error', () => {
          failures++;
          if (++done === total) resolve();
        });
        req.end();
      }
      if (sent < total) setImmediate(tick);
    };
    tick();
  });
  agent.destroy();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies), failures };
}

let broker;
try {
  broker = await startMosquitto();
  const registry = await startRegistry();
  const image = randomBytes(1024 * 1024);
  image[0] = 0xe9;
  await pushFirmware(new RegistryClient({ url: registry, insecure: true }), { repo: 'fw/bench-board', tag: '1.0.0', bytes: image });

  const httpPort = await freePort();
  const config = join(dir, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      stateDir: join(dir, 'state'),
      mqtt: { url: broker.url },
      http: { port: httpPort },
      log: { level: 'warn' },
      firmware: { enabled: true, registry: { url: registry, insecure: true, repositoryPrefix: 'fw' }, freshnessSeconds: 86_400 },
    }),
  );
  const agent = spawn(...onServerCpu(process.execPath, [entry, 'run', '--config', config]), { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(agent);
  const base = `http://127.0.0.1:${httpPort}`;
  await until(async () => (await fetch(`${base}/health`)).ok, 'the agent');
  const served = Buffer.from(await (await fetch(`${base}/firmware?device=bench-board`)).arrayBuffer());
  if (!served.equals(image)) throw new Error('the agent did not serve the pushed image');
  const versionBody = await (await fetch(`${base}/version?device=bench-board`)).text();
  const nginx = await startNginx({ 'fw.bin': image, 'version.txt': versionBody });
  // The platform's floor, for reading the figures: a bare Node server answering from Buffers.
  const barePort = await freePort();
  const bare = spawn(
    ...onServerCpu(process.execPath, [
      '-e',
      `
    const body = require('node:fs').readFileSync(process.env.IMAGE_FILE);
    const small = process.env.VERSION_BODY;
    require('node:http').createServer((req, res) => {
      // The agent's own content types, so that both answer with the same header bytes.
      const fw = req.url === '/fw.bin';
      const b = fw ? body : small;
      res.writeHead(200, { 'content-type': fw ? 'application/octet-stream' : 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(b)) });
      res.end(b);
    }).listen(${barePort}, '127.0.0.1');`,
    ]),
    { env: { IMAGE_FILE: join(dir, 'nginx', 'www', 'fw.bin'), VERSION_BODY: versionBody }, stdio: 'ignore' },
  );
  children.push(bare);
  const bareBase = `http://127.0.0.1:${barePort}`;
  await until(async () => (await fetch(`${bareBase}/version.txt`)).ok, 'the bare Node server');

  const rows = [];
  for (const [what, ours, theirs, floor] of [
    ['/firmware (1 MiB)', `${base}/firmware?device=bench-board`, `${nginx}/fw.bin`, `${bareBase}/fw.bin`],
    ['/version', `${base}/version?device=bench-board`, `${nginx}/version.txt`, `${bareBase}/version.txt`],
  ]) {
    for (const c of [32, 64]) {
      const a = [];
      const n = [];
      const b = [];
      for (let round = 0; round < ROUNDS; round++) {
        a.push(await wrk(ours, c));
        n.push(await wrk(theirs, c));
        b.push(await wrk(floor, c));
      }
      const ar = median(a.map((x) => x.rps));
      const nr = median(n.map((x) => x.rps));
      const ratio = median(a.map((x, i) => x.rps / n[i].rps));
      rows.push({ what, c, ratio });
      const errors = a.reduce((sum, x) => sum + x.errors, 0);
      console.log(
        `${what.padEnd(18)} c=${c}: edgevisor ${ar.toFixed(0).padStart(7)} req/s (p99 ${median(a.map((x) => x.p99)).toFixed(2)} ms, non-2xx ${errors})  nginx ${nr.toFixed(0).padStart(7)} req/s (p99 ${median(n.map((x) => x.p99)).toFixed(2)} ms)  ratio ${ratio.toFixed(2)}x  [per round: ${a.map((x, i) => (x.rps / n[i].rps).toFixed(2)).join(' ')}]; bare Node ${median(b.map((x) => x.rps)).toFixed(0)} req/s = ${median(b.map((x, i) => x.rps / n[i].rps)).toFixed(2)}x nginx; edgevisor/bare Node ${median(a.map((x, i) => x.rps / b[i].rps)).toFixed(2)}x`,
      );
    }
  }
  const pa = [];
  const pn = [];
  for (let round = 0; round < ROUNDS; round++) {
    pa.push(await paced(`${base}/version?device=bench-board`, RATE, PACED_SECONDS));
    pn.push(await paced(`${nginx}/version.txt`, RATE, PACED_SECONDS));
  }
  const m = (xs, k) => median(xs.map((x) => x[k]));
  const p99 = m(pa, 'p99');
  console.log(
    `/version at ${RATE} req/s, ${PACED_SECONDS} s x ${ROUNDS}: edgevisor p50 ${m(pa, 'p50').toFixed(3)} ms p99 ${p99.toFixed(3)} ms (per round ${pa.map((x) => x.p99.toFixed(2)).join(' ')}; failures ${pa.reduce((s2, x) => s2 + x.failures, 0)}); nginx p50 ${m(pn, 'p50').toFixed(3)} ms p99 ${m(pn, 'p99').toFixed(3)} ms (per round ${pn.map((x) => x.p99.toFixed(2)).join(' ')})`,
  );
  const worst = (what) => Math.min(...rows.filter((r) => r.what === what).map((r) => r.ratio));
  console.log(
    `goals: /firmware >= 0.9x nginx: ${worst('/firmware (1 MiB)').toFixed(2)}x ${worst('/firmware (1 MiB)') >= 0.9 ? 'met' : 'NOT met'}; /version >= 0.8x nginx small file: ${worst('/version').toFixed(2)}x ${worst('/version') >= 0.8 ? 'met' : 'NOT met'}; /version p99 < 1 ms at ${RATE} req/s: ${p99.toFixed(3)} ms ${p99 < 1 ? 'met' : 'NOT met'}`,
  );
} finally {
  broker?.stop();
  for (const child of children.reverse()) if (child.exitCode === null) child.kill('SIGTERM');
  await sleep(200);
}
