// Serial benchmark: a socat pty pair streaming newline-delimited lines at the pace of
// 921,600 baud 8N1 (92,160 bytes/s) into the agent (built bundle, a fixed port, lines
// protocol), measured in the same run against a reference: the same pty read with
// serialport alone in this process.
//   lines/s delivered to a WebSocket client and to MQTT   vs lines/s serialport reads alone
//   loss (goal 0)
//   latency from the pty write to the WebSocket message    (goal p99 < 5 ms) vs pty write -> serialport 'data'
//   (latency after a 1 s warm-up, WARMUP_SECONDS; SHOW_STALLS=1 lists lines slower than 20 ms)
// Run: npm run bench:serial   (builds first; needs socat and mosquitto; about half a minute)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { agentNodeArgs, freePort, median, percentile, sleep, startMosquitto, until } from './support.mjs';

const SECONDS = Number(process.env.SECONDS ?? 5);
/** latency is taken after this much streaming (JIT and first-use warm-up); loss counts every line */
const WARMUP_SECONDS = Number(process.env.WARMUP_SECONDS ?? 1);
const RUNS = Number(process.env.RUNS ?? 3);
const BYTES_PER_SECOND = 921_600 / 10; // 8N1: ten bits a byte
const entry = new URL('../dist/bundle/main.js', import.meta.url).pathname;
const { SerialPort } = createRequire(import.meta.url)('serialport');
const dir = mkdtempSync(join(tmpdir(), 'bench-serial-'));

async function ptyPair(name) {
  const near = join(dir, `${name}-near`);
  const far = join(dir, `${name}-far`);
  const child = spawn('socat', [`pty,raw,echo=0,link=${far}`, `pty,raw,echo=0,link=${near}`], { stdio: 'ignore' });
  await until(() => existsSync(near) && existsSync(far), "socat's ptys");
  return { near, far, stop: () => child.kill('SIGTERM') };
}

/** Writes numbered lines (~32 bytes) into `far` at the baud rate's pace for SECONDS; returns each line's write time. */
async function stream(far) {
  const handle = await open(far, 'w');
  const written = [];
  const start = performance.now();
  let bytes = 0;
  let seq = 0;
  while (performance.now() - start < SECONDS * 1000) {
    const due = ((performance.now() - start) / 1000) * BYTES_PER_SECOND;
    const lines = [];
    while (bytes < due) {
      const line = `seq=${seq} t=${'x'.repeat(seq % 16)}\n`;
      lines.push(line);
      bytes += line.length;
      seq++;
    }
    if (lines.length) {
      const at = performance.now();
      for (let i = 0; i < lines.length; i++) written.push(at);
      await handle.write(lines.join(''));
    }
    await sleep(1);
  }
  await handle.close();
  return written;
}

/** user + system CPU seconds of a process, from /proc (clock ticks of 1/100 s). */
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const seqOf = (line) => Number(/^seq=(\d+) /.exec(line)?.[1]);

/** Reference: serialport alone reading the pty. */
async function raw() {
  const pty = await ptyPair('raw');
  const port = new SerialPort({ path: pty.near, baudRate: 921_600, autoOpen: false });
  await new Promise((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const arrived = [];
  let partial = '';
  let first = 0;
  let last = 0;
  port.on('data', (chunk) => {
    const now = performance.now();
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    for (const line of parts) arrived[seqOf(line)] = now;
    first ||= now;
    last = now;
  });
  const written = await stream(pty.far);
  await sleep(500);
  port.close();
  pty.stop();
  return figures(written, arrived, first, last);
}

function figures(written, arrived, first, last) {
  if (process.env.SHOW_STALLS) {
    const slow = [];
    for (let i = 0; i < written.length; i++)
      if (arrived[i] - written[i] > 20) slow.push(`${((written[i] - written[0]) / 1000).toFixed(2)}s:${(arrived[i] - written[i]).toFixed(0)}ms`);
    console.log(`  stalls over 20 ms (time into the run: latency): ${slow.filter((_, i) => i % 50 === 0).join(' ') || 'none'}`);
  }
  const latencies = [];
  let got = 0;
  const measured = written[0] + WARMUP_SECONDS * 1000;
  for (let i = 0; i < written.length; i++) {
    if (arrived[i] === undefined) continue;
    got++;
    if (written[i] >= measured) latencies.push(arrived[i] - written[i]);
  }
  return {
    sent: written.length,
    got,
    rate: got / ((last - first) / 1000),
    loss: written.length - got,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

/** The agent: the same stream through parser, outbox and /ws. */
async function agent(brokerUrl) {
  const pty = await ptyPair('agent');
  const profiles = join(dir, 'profiles');
  await import('node:fs/promises').then((fs) => fs.mkdir(profiles, { recursive: true }));
  writeFileSync(join(profiles, 'fast-lines.json'), JSON.stringify({ serial: { baudRate: 921_600 }, protocol: { type: 'lines' } }));
  const port = await freePort();
  const thing = `bench-serial-${process.pid}`;
  const config = join(dir, `config-${port}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      thingName: thing,
      stateDir: mkdtempSync(join(dir, 'state-')),
      mqtt: { url: brokerUrl },
      http: { port },
      log: { level: 'warn' },
      devices: { enabled: true, hotplug: 'off', profilesDir: profiles, ports: [{ path: pty.near, profile: 'fast-lines', id: 'bench' }] },
    }),
  );
  const child = spawn(process.execPath, [...agentNodeArgs(), entry, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await until(async () => (await (await fetch(`${base}/api/v1/devices`)).json()).devices?.[0]?.state === 'streaming', 'the port to stream');
  const sub = await mqtt.connectAsync(brokerUrl, { clientId: `bench-sub-${process.pid}` });
  const mqttArrived = [];
  let mqttFirst = 0;
  let mqttLast = 0;
  sub.on('message', (_topic, payload) => {
    const now = performance.now();
    mqttArrived[seqOf(JSON.parse(payload).line)] = now;
    mqttFirst ||= now;
    mqttLast = now;
  });
  if (!process.env.NO_MQTT) await sub.subscribeAsync(`devices/${thing}/peripherals/bench/data`, { qos: 1 });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  await new Promise((resolve) => ws.once('open', resolve));
  ws._socket.setNoDelay(true);
  const wsArrived = [];
  let wsFirst = 0;
  let wsLast = 0;
  ws.on('message', (data) => {
    const m = JSON.parse(data);
    if (m.type !== 'reading') return;
    const now = performance.now();
    wsArrived[seqOf(m.reading.line)] = now;
    wsFirst ||= now;
    wsLast = now;
  });
  ws.send(JSON.stringify({ type: 'subscribe', devices: ['bench'] }));
  await sleep(200);
  const cpuBefore = cpuSeconds(child.pid);
  const streamStart = performance.now();
  const written = await stream(pty.far);
  const cpu = (cpuSeconds(child.pid) - cpuBefore) / ((performance.now() - streamStart) / 1000);
  for (let i = 0; i < 100 && !process.env.NO_MQTT && mqttArrived.filter(Boolean).length < written.length; i++) await sleep(100);
  // What the agent itself counted: frames parsed, and messages the broker acknowledged
  const counters = (await fetch(`${base}/api/v1/devices`).then((r) => r.json())).devices[0].counters;
  const outbox = await fetch(`${base}/api/v1/outbox`).then((r) => r.json());
  ws.close();
  await sub.endAsync();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  pty.stop();
  return {
    cpu,
    frames: counters.frames,
    acked: outbox.delivered,
    ws: figures(written, wsArrived, wsFirst, wsLast),
    mqtt: figures(written, mqttArrived, mqttFirst, mqttLast),
  };
}

const broker = await startMosquitto();
const runs = [];
try {
  for (let run = 0; run < RUNS; run++) runs.push({ raw: await raw(), ...(await agent(broker.url)) });
} finally {
  broker.stop();
}
const m = (path) => median(runs.map(path));
const fmt = (x, d = 0) => (x ?? NaN).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `serial: ${SECONDS} s of lines at 921,600 baud pace, medians of ${RUNS} runs (${fmt(m((r) => r.raw.sent))} lines a run; latency after the first ${WARMUP_SECONDS} s)`,
);
console.log(
  `  serialport alone    ${fmt(m((r) => r.raw.rate))} lines/s, loss ${m((r) => r.raw.loss)}, write->data p50 ${fmt(
    m((r) => r.raw.p50),
    2,
  )} ms, p99 ${fmt(
    m((r) => r.raw.p99),
    2,
  )} ms`,
);
console.log(
  `  agent -> WebSocket  ${fmt(m((r) => r.ws.rate))} lines/s (${fmt(
    m((r) => r.ws.rate / r.raw.rate),
    2,
  )}x), loss ${m((r) => r.ws.loss)}, write->message p50 ${fmt(
    m((r) => r.ws.p50),
    2,
  )} ms, p99 ${fmt(
    m((r) => r.ws.p99),
    2,
  )} ms (goal < 5)`,
);
console.log(
  `  agent counted ${fmt(m((r) => r.frames))} frames parsed, ${fmt(m((r) => r.acked))} messages acknowledged by the broker (of ${fmt(m((r) => r.raw.sent))} lines; the acknowledged also hold the .../state messages)`,
);
console.log(`  agent CPU while streaming: ${fmt(m((r) => r.cpu) * 100)} % of one core`);
console.log(
  `  agent -> MQTT       ${fmt(m((r) => r.mqtt.rate))} lines/s (${fmt(
    m((r) => r.mqtt.rate / r.raw.rate),
    2,
  )}x), loss ${m((r) => r.mqtt.loss)}, write->message p50 ${fmt(
    m((r) => r.mqtt.p50),
    2,
  )} ms, p99 ${fmt(
    m((r) => r.mqtt.p99),
    2,
  )} ms (through the durable outbox: fdatasync first)`,
);
