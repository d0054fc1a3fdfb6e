// What the benchmarks share: free ports, a throwaway mosquitto, percentiles.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
export const median = (xs) => percentile(xs, 50);

/** Polls `probe` (a failure counts as not yet) every 50 ms, 15 s at most. */
export async function until(probe, what) {
  for (let i = 0; i < 300; i++) {
    try {
      if (await probe()) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** AGENT_NODE_ARGS: flags for the agent's node only (say --cpu-prof --cpu-prof-dir=DIR). */
export const agentNodeArgs = () => (process.env.AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);

export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const canConnect = (port) =>
  new Promise((r) =>
    createConnection({ port, host: '127.0.0.1' })
      .once('connect', function () {
        this.destroy();
        r(true);
      })
      .once('error', () => r(false)),
  );

/** mosquitto on a loopback port of its own, with Nagle off on its sockets (it is on by default); `extra`: more config lines. */
export async function startMosquitto(extra = []) {
  const port = await freePort();
  const conf = join(mkdtempSync(join(tmpdir(), 'bench-mosquitto-')), 'm.conf');
  writeFileSync(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nset_tcp_nodelay true\n${extra.map((l) => `${l}\n`).join('')}${process.getuid?.() === 0 ? 'user root\n' : ''}`,
  );
  const child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !(await canConnect(port)); i++) await sleep(20);
  return { url: `mqtt://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}
