import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import type { AlertNotice, AlertRule } from '../../../machines/alert.js';
import { alertsMachine, type AlertsInput } from '../../../machines/alerts.js';
import { alertsActors } from '../../../src/actors/alerts/index.js';
import { slackMessage } from '../../../src/alerts/slack.js';
import { createLogger } from '../../../src/log.js';
import { Drainer } from '../../../src/outbox/drainer.js';
import { Outbox } from '../../../src/outbox/queue.js';
import { Slot } from '../../../src/slot.js';
import { AlertRuleSchema, AlertRulesSchema } from '../../../src/config/alerts.js';
import { FakeSlack } from '../../support/fake-slack.js';
import { killOnExit, Mosquitto } from '../../support/mosquitto.js';
import { subscriber } from '../../support/mqtt.js';
import { waitFor } from '../../support/ports.js';

const T0 = 1_700_000_000_000;
const rule: AlertRule = { id: 'hot', metric: 'cpu-temp-celsius', op: '>', threshold: 80, clear: 70, severity: 'critical', devices: 'all' };
const silent = createLogger({ level: 'silent' as 'info' });

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function agent(stateDir: string, slack: FakeSlack | null, outbox = new Slot<Outbox>(), input: Partial<AlertsInput> = {}) {
  const parts = alertsActors({ stateDir, thingName: 'box-1', slackWebhookUrl: slack?.url, outbox, log: silent, retry: { minMs: 10, maxMs: 80 } });
  const actor = createActor(alertsMachine.provide({ actors: parts.actors }), {
    input: { rules: [rule], thingName: 'box-1', ...input },
    clock: new SimulatedClock(),
  });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const stop = () => actor.stop();
  cleanups.push(stop);
  const sample = (device: string, seconds: number, value: number) =>
    actor.send({ type: 'alerts.sample', sample: { device, ts: T0 + seconds * 1000, values: { [rule.metric]: value } } });
  return { actor, errors, sample, stop, store: parts.store, ctx: () => actor.getSnapshot().context };
}

/** Firing, then resolved, for each device in turn: 2 × devices notices, in a known order. */
function flap(a: ReturnType<typeof agent>, devices: string[], from = 0): string[] {
  const expected: string[] = [];
  devices.forEach((device, i) => {
    a.sample(device, from + i * 10, 90);
    a.sample(device, from + i * 10 + 5, 50);
    expected.push(`FIRING ${device}`, `RESOLVED ${device}`);
  });
  return expected;
}

const seen = (slack: FakeSlack) => slack.taken.map((m) => /(FIRING|RESOLVED) \[\w+\] hot on ([\w-]+)/.exec(m.text)!.slice(1, 3).join(' '));
const freshDir = () => mkdtempSync(join(tmpdir(), 'edgevisor-alerts-'));

describe('Slack notices', () => {
  it('a Slack outage (500s, then connection refused) delays notices but delivers every one, once, in order', async () => {
    const slack = await FakeSlack.start();
    cleanups.push(() => slack.close());
    slack.answer = (n) => (n <= 3 ? { status: 500, body: 'rollup_error' } : { status: 200, body: 'ok' });
    await slack.close(); // down: refused first
    const a = agent(freshDir(), slack);
    const expected = flap(a, ['dev-1', 'dev-2', 'dev-3']);
    await waitFor(
      () => (a.ctx().delivery.slack?.failing?.code === 'ECONNREFUSED' && a.ctx().delivery.slack.pending === 6 ? true : undefined),
      'the refused connection to show',
    );
    expect(a.ctx().delivery.slack).toMatchObject({ pending: 6, delivered: 0 });
    expect(slack.taken).toEqual([]);
    await slack.listen(); // up, but answers 500 three times
    await waitFor(() => (slack.taken.length === 6 ? true : undefined), 'all notices at Slack');
    expect(seen(slack)).toEqual(expected);
    expect(slack.requests).toBe(3 + 6);
    await waitFor(() => (a.ctx().delivery.slack?.pending === 0 && a.ctx().delivery.slack.failing === null ? true : undefined), 'the channel to show healthy');
    expect(a.ctx().delivery.slack).toMatchObject({ delivered: 6, dropped: 0, rejected: 0 });
    expect(a.errors).toEqual([]);
  });

  it('a restart in the middle of an outage loses none: the new actors over the same stateDir deliver them, and a firing alert is neither forgotten nor fired again', async () => {
    const stateDir = freshDir();
    const slack = await FakeSlack.start();
    cleanups.push(() => slack.close());
    slack.answer = () => ({ status: 503, body: 'down' });
    const first = agent(stateDir, slack);
    const expected = flap(first, ['dev-1', 'dev-2']);
    first.sample('dev-3', 100, 95); // dev-3 fires and stays firing
    expected.push('FIRING dev-3');
    await waitFor(() => (first.ctx().delivery.slack?.pending === 5 && slack.requests >= 2 ? true : undefined), 'notices pending and retried');
    first.stop();
    await new Promise((r) => setTimeout(r, 1100)); // the debounced state write
    expect(JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')).states['alert:hot:dev-3']).toMatchObject({ level: 'firing', notified: 'firing' });

    slack.answer = () => ({ status: 200, body: 'ok' });
    const second = agent(stateDir, slack);
    await waitFor(() => (slack.taken.length === 5 ? true : undefined), 'the pending notices after the restart');
    expect(seen(slack)).toEqual(expected);
    // dev-1 and dev-2 come back resolved, dev-3 firing; none sends a notice again
    expect(second.ctx().alerts).toEqual({
      'alert:hot:dev-1': { rule: 'hot', device: 'dev-1', level: 'resolved' },
      'alert:hot:dev-2': { rule: 'hot', device: 'dev-2', level: 'resolved' },
      'alert:hot:dev-3': { rule: 'hot', device: 'dev-3', level: 'firing' },
    });
    second.sample('dev-3', 110, 96); // still hot: no second firing notice
    second.sample('dev-3', 120, 60);
    await waitFor(() => (slack.taken.length === 6 ? true : undefined), 'the resolved notice');
    expect(seen(slack).slice(5)).toEqual(['RESOLVED dev-3']);
    expect(second.errors).toEqual([]);
  });

  it('kill -9 of the agent with notices pending loses none: they are delivered, in order, by the next run', async () => {
    const stateDir = freshDir();
    const slack = await FakeSlack.start();
    cleanups.push(() => slack.close());
    slack.answer = () => ({ status: 500, body: 'rollup_error' });
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../support/alerts-process.ts'), stateDir, slack.url], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    killOnExit(child);
    cleanups.push(() => child.kill('SIGKILL'));
    await new Promise<void>(
      (resolve, reject) => (child.stdout!.once('data', () => resolve()), child.once('exit', (code) => reject(new Error(`exited ${code}`)))),
    );
    const expected: string[] = [];
    ['dev-1', 'dev-2', 'dev-3'].forEach((device, i) => {
      child.stdin!.write(
        `${JSON.stringify({ device, ts: T0 + i * 10_000, value: 90 })}\n${JSON.stringify({ device, ts: T0 + i * 10_000 + 5000, value: 50 })}\n`,
      );
      expected.push(`FIRING ${device}`, `RESOLVED ${device}`);
    });
    const pendingOnDisk = () => {
      try {
        return (JSON.parse(readFileSync(join(stateDir, 'alerts.json'), 'utf8')) as { pending: { slack: unknown[] } }).pending.slack.length;
      } catch {
        return 0;
      }
    };
    await waitFor(() => (pendingOnDisk() === 6 && slack.requests >= 2 ? true : undefined), 'six notices on disk, Slack failing', 30_000);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(slack.taken).toEqual([]);

    slack.answer = () => ({ status: 200, body: 'ok' });
    agent(stateDir, slack);
    await waitFor(() => (slack.taken.length === 6 ? true : undefined), 'the notices from before the kill');
    expect(seen(slack)).toEqual(expected);
  });

  it('honours Retry-After on 429, and drops (counted) a notice Slack refuses for good with 400', async () => {
    const slack = await FakeSlack.start();
    cleanups.push(() => slack.close());
    slack.answer = (n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : n === 2 ? { status: 400, body: 'invalid_payload' } : { status: 200, body: 'ok' };
    const a = agent(freshDir(), slack);
    flap(a, ['dev-1']);
    await waitFor(() => (slack.taken.length === 1 ? true : undefined), 'the second notice');
    expect(seen(slack)).toEqual(['RESOLVED dev-1']);
    await waitFor(() => (a.ctx().delivery.slack?.rejected === 1 && a.ctx().delivery.slack.delivered === 1 ? true : undefined), 'the refusal counted');
    expect(a.ctx().delivery.slack).toMatchObject({ delivered: 1, rejected: 1, pending: 0 });
  });

  it('keeps pending notices bounded: beyond the cap the oldest go, counted', async () => {
    const slack = await FakeSlack.start();
    await slack.close();
    const outbox = new Slot<Outbox>();
    const parts = alertsActors({
      stateDir: freshDir(),
      thingName: 'box-1',
      slackWebhookUrl: slack.url,
      slackMaxPending: 3,
      outbox,
      log: silent,
      retry: { minMs: 10, maxMs: 50 },
    });
    const store = await parts.store();
    for (let i = 0; i < 5; i++) await store.addNotice({ ...notice, at: T0 + i });
    expect(store.stats('slack')).toMatchObject({ pending: 3, dropped: 2 });
    expect(store.head('slack')!.notice.at).toBe(T0 + 2);
  });
});

const notice: AlertNotice = {
  kind: 'firing',
  alert: 'alert:hot:box-1',
  rule: 'hot',
  device: 'box-1',
  metric: 'cpu-temp-celsius',
  op: '>',
  threshold: 80,
  clear: 70,
  severity: 'critical',
  value: 91.23456789,
  at: T0 + 30_000,
  since: T0,
  suppressed: 2,
};

describe('Slack message', () => {
  it('says device, metric, value, threshold and since, in text and blocks, with Slack escaping', () => {
    const m = slackMessage(notice, 'collector-1');
    expect(m.text).toBe(':rotating_light: FIRING [critical] hot on box-1: cpu-temp-celsius = 91.2346 &gt; 80, since 2023-11-14T22:13:20Z');
    const all = JSON.stringify(m.blocks);
    for (const part of [
      '*Device*\\nbox-1',
      '*Metric*\\ncpu-temp-celsius',
      '*Value*\\n91.2346',
      '*Threshold*\\n&gt; 80',
      '*Since*\\n2023-11-14T22:13:20Z',
      'collector-1',
      '2 earlier notice(s)',
    ])
      expect(all).toContain(part);
    const resolved = slackMessage({ ...notice, kind: 'resolved', value: 69, suppressed: 0 }, 'box-1');
    expect(resolved.text).toContain('RESOLVED [critical] hot on box-1: cpu-temp-celsius = 69 (&lt;= 70)');
    expect(JSON.stringify(resolved.blocks)).not.toContain('held back');
  });
});

describe('MQTT notices', () => {
  it('reach devices/<thing>/alerts on a real mosquitto through a real outbox, in order, also when the outbox opens late', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url, 'devices/box-1/alerts');
    cleanups.push(() => sub.close());
    const slot = new Slot<Outbox>();
    const a = agent(freshDir(), null, slot);
    const expected = flap(a, ['dev-1', 'dev-2']);
    await waitFor(() => (a.ctx().delivery.mqtt?.failing?.code === 'outbox_closed' ? true : undefined), 'the closed outbox to show');

    const outbox = await Outbox.open(freshDir(), { maxMessages: 1000, maxBytes: 1 << 20, overflow: 'dropOldest', segmentBytes: 1 << 20 });
    const client = await mqtt.connectAsync(broker.url, { clientId: `alerts-test-${process.pid}` });
    const drainer = new Drainer(outbox, 16);
    drainer.start(client);
    cleanups.push(async () => (drainer.stop(), await client.endAsync(true), await outbox.close()));
    slot.set(outbox);

    await waitFor(() => (sub.messages.length === 4 ? true : undefined), 'the notices on MQTT');
    const payloads = sub.messages.map((m) => JSON.parse(m.payload) as AlertNotice & { v: number });
    expect(payloads.map((p) => `${p.kind.toUpperCase()} ${p.device}`)).toEqual(expected);
    expect(payloads[0]).toMatchObject({
      v: 1,
      alert: 'alert:hot:dev-1',
      rule: 'hot',
      metric: 'cpu-temp-celsius',
      value: 90,
      threshold: 80,
      clear: 70,
      severity: 'critical',
      since: T0,
      at: T0,
    });
    expect(sub.messages.every((m) => !m.retain)).toBe(true);
    await waitFor(() => (a.ctx().delivery.mqtt?.delivered === 4 && a.ctx().delivery.mqtt.failing === null ? true : undefined), 'the channel to show healthy');
  });
});

describe('alert rule config', () => {
  it('fills defaults and refuses a clear on the wrong side, unknown keys and duplicate ids with a clear message', () => {
    expect(AlertRuleSchema.parse({ id: 'cpu', metric: 'cpu-percent', op: '>', threshold: 90 })).toEqual({
      id: 'cpu',
      metric: 'cpu-percent',
      op: '>',
      threshold: 90,
      forSeconds: 0,
      severity: 'warning',
      devices: 'self',
    });
    const wrong = AlertRuleSchema.safeParse({ id: 'cpu', metric: 'cpu-percent', op: '>', threshold: 90, clear: 95 });
    expect(wrong.success).toBe(false);
    expect(wrong.error!.issues[0]).toMatchObject({ path: ['clear'], message: expect.stringContaining('safe side') });
    expect(AlertRuleSchema.safeParse({ id: 'cpu', metric: 'm', op: '=', threshold: 1 }).success).toBe(false);
    expect(AlertRuleSchema.safeParse({ id: 'a b', metric: 'm', op: '>', threshold: 1 }).success).toBe(false);
    expect(AlertRuleSchema.safeParse({ id: 'a', metric: 'm', op: '>', threshold: 1, extra: 1 }).success).toBe(false);
    const dup = AlertRulesSchema.safeParse([
      { id: 'a', metric: 'm', op: '>', threshold: 1 },
      { id: 'a', metric: 'n', op: '<', threshold: 1, devices: ['box-2'] },
    ]);
    expect(dup.error!.issues[0].message).toBe('rule ids must be unique');
  });
});
