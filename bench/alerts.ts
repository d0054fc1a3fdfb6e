/**
 * How many samples per second the alerts manager takes (rule × device charts, no I/O), with
 * the notifier a no-op, against two references measured in the same run: the same samples
 * compared against the thresholds in a plain loop, and the same number of events
 * (1 + rules per sample) sent to a one-state XState machine that does nothing.
 * Run: npx tsx bench/alerts.ts [devices] [rules] [seconds]
 */
import { createActor, createMachine, fromCallback, fromPromise } from 'xstate';
import { breaches, type AlertRule } from '../machines/alert.js';
import { alertsMachine, type AlertRecord } from '../machines/alerts.js';

const devices = Number(process.argv[2] ?? 1000);
const ruleCount = Number(process.argv[3] ?? 5);
const seconds = Number(process.argv[4] ?? 60);
const rules: AlertRule[] = Array.from({ length: ruleCount }, (_, i) => ({ id: `r${i}`, metric: `m${i}`, op: '>', threshold: 90, clear: 80, devices: 'all' }));
const sampleOf = (d: number, s: number) => ({
  device: `dev-${d}`,
  ts: 1_700_000_000_000 + s * 1000, // mostly quiet (40-59), one series in 50 hot for a while: transitions are rare, as on real hosts
  values: Object.fromEntries(rules.map((r, i) => [r.metric, (d + i) % 50 === 0 && s % 20 < 10 ? 95 : 40 + ((d * 7 + s * 13 + i * 31) % 20)])),
});

let notices = 0;
const machine = alertsMachine.provide({
  actors: {
    restoreAlerts: fromPromise<Record<string, AlertRecord>, void>(async () => ({})),
    notifier: fromCallback(({ receive }) => receive((c) => void (c.type === 'alerts.notice' && notices++))),
  },
});
const actor = createActor(machine, { input: { rules, thingName: 'box', maxAlerts: devices * ruleCount, rateLimit: { max: 1e9, windowMs: 60_000 } } });
actor.start();
await new Promise((r) => setTimeout(r, 10));

const heap0 = process.memoryUsage().heapUsed;
let t = performance.now();
for (let s = 0; s < seconds; s++) for (let d = 0; d < devices; d++) actor.send({ type: 'alerts.sample', sample: sampleOf(d, s) });
const chart = performance.now() - t;
const heap = process.memoryUsage().heapUsed - heap0;

let hits = 0;
t = performance.now();
for (let s = 0; s < seconds; s++)
  for (let d = 0; d < devices; d++) {
    const sample = sampleOf(d, s);
    for (const r of rules) if (breaches(r, sample.values[r.metric])) hits++;
  }
const plain = performance.now() - t;
const idle = createActor(createMachine({ on: { x: {} } })).start();
t = performance.now();
for (let i = 0; i < devices * seconds * (1 + ruleCount); i++) idle.send({ type: 'x' });
const xstateFloor = performance.now() - t;
const n = devices * seconds;
console.log(
  JSON.stringify({
    devices,
    rules: ruleCount,
    samples: n,
    alerts: Object.keys(actor.getSnapshot().context.alerts).length,
    notices,
    samplesPerSecond: Math.round(n / (chart / 1000)),
    plainLoopPerSecond: Math.round(n / (plain / 1000)),
    vsPlainLoop: +(chart / plain).toFixed(1),
    vsIdleMachineEvents: +(chart / xstateFloor).toFixed(2),
    heapGrowthMB: +(heap / 2 ** 20).toFixed(1),
    hits,
  }),
);
actor.stop();
