/**
 * A process that runs the alerts manager with its real actors over a stateDir, for the
 * kill -9 test: argv = stateDir, Slack webhook URL. It takes samples as JSON lines on stdin
 * ({ device, ts, value } for the metric "cpu-temp-celsius") and runs until killed.
 */
import { createInterface } from 'node:readline';
import { createActor } from 'xstate';
import { alertsMachine } from '../../machines/alerts.js';
import { alertsActors } from '../../src/actors/alerts/index.js';
import { createLogger } from '../../src/log.js';
import { Slot } from '../../src/slot.js';

const [stateDir, slackWebhookUrl] = process.argv.slice(2);
const parts = alertsActors({
  stateDir,
  thingName: 'box-1',
  slackWebhookUrl,
  outbox: new Slot(),
  log: createLogger({ level: 'silent' as 'info' }),
  retry: { minMs: 20, maxMs: 100 },
});
const rule = { id: 'hot', metric: 'cpu-temp-celsius', op: '>' as const, threshold: 80, clear: 70, devices: 'all' as const };
const actor = createActor(alertsMachine.provide({ actors: parts.actors }), { input: { rules: [rule], thingName: 'box-1' } }).start();
createInterface({ input: process.stdin }).on('line', (line) => {
  const { device, ts, value } = JSON.parse(line) as { device: string; ts: number; value: number };
  actor.send({ type: 'alerts.sample', sample: { device, ts, values: { [rule.metric]: value } } });
});
process.stdout.write('ready\n');
