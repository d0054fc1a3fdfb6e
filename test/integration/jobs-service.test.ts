import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalJobsService } from '../../scripts/jobs-service.js';
import { Mosquitto } from '../support/mosquitto.js';
import { waitFor } from '../support/ports.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A bare device on the Jobs MQTT API: requests answered by clientToken, notify-next collected. */
async function device(url: string, thingName: string) {
  const client: MqttClient = await mqtt.connectAsync(url, { clientId: `device-${randomUUID()}` });
  cleanups.push(() => client.endAsync(true));
  const prefix = `$aws/things/${thingName}/jobs/`;
  const answers = new Map<string, (a: { outcome: string; body: Record<string, unknown> }) => void>();
  const notified: Array<Record<string, unknown>> = [];
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString());
    if (topic === `${prefix}notify-next`) return void notified.push(body);
    const outcome = topic.endsWith('/accepted') ? 'accepted' : 'rejected';
    answers.get(body.clientToken)?.({ outcome, body });
  });
  await client.subscribeAsync([`${prefix}notify-next`, `${prefix}+/accepted`, `${prefix}+/rejected`, `${prefix}+/+/accepted`, `${prefix}+/+/rejected`], {
    qos: 1,
  });
  const ask = (path: string, request: Record<string, unknown>) =>
    new Promise<{ outcome: string; body: Record<string, unknown> }>((resolve) => {
      const clientToken = randomUUID();
      answers.set(clientToken, resolve);
      client.publish(`${prefix}${path}`, JSON.stringify({ ...request, clientToken }), { qos: 1 });
    });
  return { ask, notified };
}

async function setup(minuteMs: number) {
  // A broker of its own: every local service answers every thing's requests, so another
  // file's service on the shared broker would answer this device too (ResourceNotFound).
  const broker = await Mosquitto.start();
  cleanups.push(() => broker.stop());
  const url = broker.url;
  const service = await LocalJobsService.start(url, { minuteMs });
  cleanups.push(() => service.stop());
  const thingName = `svc-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  return { service, thingName, device: await device(url, thingName) };
}

const doc = { version: '1.0', steps: [{ action: { name: 's', type: 'runCommand', input: { command: '/bin/true' } } }] };

describe('local jobs service: timeouts as AWS IoT Jobs runs them', () => {
  it('a step timer from start-next times the execution out; a later update is refused; notify-next moves on', async () => {
    const { service, thingName, device } = await setup(300);
    service.createJob(thingName, 'first', doc);
    service.createJob(thingName, 'second', doc);
    const started = await device.ask('start-next', { stepTimeoutInMinutes: 1 });
    expect(started.outcome).toBe('accepted');
    expect(started.body.execution).toMatchObject({ jobId: 'first', status: 'IN_PROGRESS', versionNumber: 2 });
    expect((started.body.execution as { approximateSecondsBeforeTimedOut: number }).approximateSecondsBeforeTimedOut).toBeGreaterThan(0);
    await waitFor(() => service.execution(thingName, 'first')?.status === 'TIMED_OUT' || undefined, 'the step timer to run out');
    await waitFor(
      () => device.notified.some((n) => (n.execution as { jobId?: string } | undefined)?.jobId === 'second') || undefined,
      'notify-next for the next job',
    );
    const late = await device.ask('first/update', { status: 'SUCCEEDED' });
    expect(late).toMatchObject({ outcome: 'rejected', body: { code: 'InvalidStateTransition', executionState: { status: 'TIMED_OUT', versionNumber: 3 } } });
    expect((await device.ask('first/get', {})).body.code).toBe('TerminalStateReached');
    // the next one runs to its end untouched by the old timer
    expect((await device.ask('second/update', { status: 'IN_PROGRESS' })).outcome).toBe('accepted');
    expect((await device.ask('second/update', { status: 'SUCCEEDED' })).outcome).toBe('accepted');
    expect(service.execution(thingName, 'second')?.status).toBe('SUCCEEDED');
  });

  it('the in-progress timer starts with IN_PROGRESS, a progress update without a step timeout leaves it, and a terminal status stops it', async () => {
    // a 1 s minute: both updates land well before it ends, even on a loaded box
    const { service, thingName, device } = await setup(1000);
    service.createJob(thingName, 'timed', doc, { timeoutConfig: { inProgressTimeoutInMinutes: 1 } });
    service.createJob(thingName, 'done-in-time', doc, { timeoutConfig: { inProgressTimeoutInMinutes: 1 } });
    // QUEUED: no timer runs yet
    expect(service.execution(thingName, 'timed')?.status).toBe('QUEUED');
    expect((await device.ask('timed/update', { status: 'IN_PROGRESS', statusDetails: { step: 'a' } })).outcome).toBe('accepted');
    expect((await device.ask('timed/update', { status: 'IN_PROGRESS', statusDetails: { step: 'b' } })).outcome).toBe('accepted');
    await waitFor(() => service.execution(thingName, 'timed')?.status === 'TIMED_OUT' || undefined, 'the in-progress timer to run out');
    expect(service.execution(thingName, 'timed')?.statusDetails).toEqual({ step: 'b' });
    // finished before its timer: stays SUCCEEDED well past the deadline
    expect((await device.ask('done-in-time/update', { status: 'IN_PROGRESS' })).outcome).toBe('accepted');
    expect((await device.ask('done-in-time/update', { status: 'SUCCEEDED' })).outcome).toBe('accepted');
    await new Promise((resolve) => setTimeout(resolve, 2000)); // twice its minute
    expect(service.execution(thingName, 'done-in-time')?.status).toBe('SUCCEEDED');
  });

  it('a new stepTimeoutInMinutes replaces the step timer; out-of-range values and timeouts are refused InvalidRequest', async () => {
    const { service, thingName, device } = await setup(200);
    service.createJob(thingName, 'stepped', doc);
    for (const bad of [0, 10_081, 1.5, '1']) {
      const answer = await device.ask('stepped/update', { status: 'IN_PROGRESS', stepTimeoutInMinutes: bad });
      expect(answer.body.code, `stepTimeoutInMinutes ${JSON.stringify(bad)}`).toBe('InvalidRequest');
    }
    expect(() => service.createJob(thingName, 'bad', doc, { timeoutConfig: { inProgressTimeoutInMinutes: 0 } })).toThrow(/inProgressTimeoutInMinutes/);
    expect(service.execution(thingName, 'stepped')?.status).toBe('QUEUED');
    // a long step timer, then replaced by a short one: the short one decides
    expect((await device.ask('stepped/update', { status: 'IN_PROGRESS', stepTimeoutInMinutes: 10_080 })).outcome).toBe('accepted');
    expect((await device.ask('stepped/update', { status: 'IN_PROGRESS', stepTimeoutInMinutes: 2 })).outcome).toBe('accepted');
    await waitFor(() => service.execution(thingName, 'stepped')?.status === 'TIMED_OUT' || undefined, 'the replaced step timer to run out');
  });
});
