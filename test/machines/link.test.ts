import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { linkMachine, type LinkInput } from '../../machines/link.js';
import { backoffMs } from '../../machines/shared/backoff.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback } from '../support/fakes.js';

const input: LinkInput = {
  broker: 'mqtt://127.0.0.1:1883',
  backoff: { minMs: 1000, maxMs: 30_000 },
  stableMs: 10_000,
  jitterSeed: 42,
};

function start(overrides: Partial<LinkInput> = {}) {
  const client = fakeCallback<{ attempt: number }>();
  const clock = new SimulatedClock();
  const errors: unknown[] = [];
  const actor = createActor(linkMachine.provide({ actors: { mqttClient: client.logic } }), {
    input: { ...input, ...overrides },
    clock,
  });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, client, clock, errors };
}

describe('link machine', () => {
  it('dials at once and is online (healthy) when the client connects', async () => {
    const { actor, client, errors } = start();
    expect(actor.getSnapshot().value).toEqual({ session: 'connecting' });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(false);
    client.current.sendBack({ type: 'mqtt.connected', at: 1234 });
    await flush();
    expect(actor.getSnapshot().value).toEqual({ session: 'online' });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
    expect(actor.getSnapshot().context.connectedAt).toBe(1234);
    expect(errors).toEqual([]);
  });

  it('backs off with growing, capped, jittered delays and dials a fresh client each time', async () => {
    const { actor, client, clock, errors } = start({ backoff: { minMs: 1000, maxMs: 4000 } });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      client.current.sendBack({ type: 'mqtt.closed', error: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } });
      await flush();
      const snap = actor.getSnapshot();
      expect(snap.value).toBe('backingOff');
      expect(snap.context.attempt).toBe(attempt);
      expect(snap.context.lastError?.code).toBe('ECONNREFUSED');
      expect(client.liveCount).toBe(0); // the old client was ended
      delays.push(snap.context.retryInMs);
      await advance(clock, snap.context.retryInMs - 1);
      expect(actor.getSnapshot().value).toBe('backingOff');
      await advance(clock, 1);
      expect(actor.getSnapshot().value).toEqual({ session: 'connecting' });
      expect(client.current.input.attempt).toBe(attempt);
    }
    expect(client.stats.started).toBe(6);
    // equal jitter: each delay lies in [ceiling/2, ceiling], ceilings 1s, 2s, 4s, 4s, 4s
    [1000, 2000, 4000, 4000, 4000].forEach((ceiling, i) => {
      expect(delays[i]).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delays[i]).toBeLessThanOrEqual(ceiling);
    });
    expect(delays).toEqual([1, 2, 3, 4, 5].map((a) => backoffMs({ minMs: 1000, maxMs: 4000 }, a, 42)));
    expect(errors).toEqual([]);
  });

  it('resets the retry count only after the connection has held for stableMs', async () => {
    const { actor, client, clock } = start();
    client.current.sendBack({ type: 'mqtt.closed' });
    await advance(clock, 30_000);
    client.current.sendBack({ type: 'mqtt.connected', at: 0 });
    await flush();
    expect(actor.getSnapshot().context.attempt).toBe(1);
    // dropped right after connecting: the count keeps growing
    client.current.sendBack({ type: 'mqtt.closed' });
    await flush();
    expect(actor.getSnapshot().context.attempt).toBe(2);
    await advance(clock, 30_000);
    client.current.sendBack({ type: 'mqtt.connected', at: 0 });
    await advance(clock, 10_000);
    expect(actor.getSnapshot().context.attempt).toBe(0);
    expect(actor.getSnapshot().context.lastError).toBeNull();
  });

  it('treats a crashing client like a closed connection', () => {
    const crashing = linkMachine.provide({
      actors: {
        mqttClient: fromCallback(() => {
          throw new Error('bad TLS key');
        }),
      },
    });
    const errors: unknown[] = [];
    const actor = createActor(crashing, { input, clock: new SimulatedClock() });
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(actor.getSnapshot().value).toBe('backingOff');
    expect(actor.getSnapshot().context.lastError?.message).toContain('bad TLS key');
    expect(errors).toEqual([]);
  });

  it('stays offline on link.disconnect and dials again on link.connect', async () => {
    const { actor, client } = start();
    client.current.sendBack({ type: 'mqtt.connected', at: 0 });
    actor.send({ type: 'link.disconnect' });
    expect(actor.getSnapshot().value).toBe('offline');
    expect(client.liveCount).toBe(0);
    actor.send({ type: 'link.connect' });
    expect(actor.getSnapshot().value).toEqual({ session: 'connecting' });
    expect(client.liveCount).toBe(1);
  });

  it('does not dial before link.connect when autoConnect is off', () => {
    const { actor, client } = start({ autoConnect: false });
    expect(actor.getSnapshot().value).toBe('offline');
    expect(client.stats.started).toBe(0);
  });

  it('link.reconnect skips the wait', async () => {
    const { actor, client } = start();
    client.current.sendBack({ type: 'mqtt.closed' });
    await flush();
    actor.send({ type: 'link.reconnect' });
    expect(actor.getSnapshot().value).toEqual({ session: 'connecting' });
    expect(client.stats.started).toBe(2);
  });
});
