import { describe, expect, it } from 'vitest';
import { createActor, fromCallback } from 'xstate';
import { emptyCounters, outboxMachine, type OutboxCounters } from '../../machines/outbox.js';
import { flush } from '../support/clock.js';
import { fakeCallback } from '../support/fakes.js';

const counters = (over: Partial<OutboxCounters> = {}): OutboxCounters => ({ ...emptyCounters, ...over });

function start() {
  const store = fakeCallback();
  const actor = createActor(outboxMachine.provide({ actors: { outboxStore: store.logic } }));
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const send = (event: Record<string, unknown> & { type: string }) => store.current.sendBack(event);
  return { actor, store, send, errors, commands: () => store.current.received.map((e) => e.type) };
}

describe('outbox machine', () => {
  it('opens, holds while the link is down, drains while it is up, holds again when it drops', () => {
    const { actor, send, commands, errors } = start();
    expect(actor.getSnapshot().value).toBe('opening');
    send({ type: 'outbox.opened', counters: counters({ depth: 3 }) });
    expect(actor.getSnapshot().value).toEqual({ open: { delivery: 'holding', capacity: 'ok' } });
    expect(actor.getSnapshot().context.counters.depth).toBe(3);
    send({ type: 'link.up' });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'draining' } });
    send({ type: 'link.down' });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'holding' } });
    expect(commands()).toEqual(['drain.start', 'drain.stop']);
    expect(errors).toEqual([]);
  });

  it('drains at once when the link came up before the store finished opening', () => {
    const { actor, send, commands } = start();
    send({ type: 'link.up' });
    send({ type: 'outbox.opened', counters: counters() });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'draining' } });
    expect(commands()).toEqual(['drain.start']);
  });

  it('paused stops delivery until resumed, whatever the link does', () => {
    const { actor, send, commands } = start();
    send({ type: 'outbox.opened', counters: counters() });
    send({ type: 'link.up' });
    actor.send({ type: 'outbox.pause' });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'paused' } });
    send({ type: 'link.down' });
    send({ type: 'link.up' });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'paused' } });
    actor.send({ type: 'outbox.resume' });
    expect(actor.getSnapshot().value).toMatchObject({ open: { delivery: 'draining' } });
    expect(commands()).toEqual(['drain.start', 'drain.stop', 'drain.start']);
  });

  it('is full (and not healthy, with the counts as the reason) while the store says so', () => {
    const { actor, send } = start();
    send({ type: 'outbox.opened', counters: counters() });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
    send({ type: 'outbox.stats', counters: counters({ depth: 10, bytes: 100, full: true, dropped: 4 }) });
    expect(actor.getSnapshot().value).toMatchObject({ open: { capacity: 'full' } });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(false);
    expect(actor.getSnapshot().context.problem).toBe('full: 10 messages, 100 bytes; 4 dropped, 0 refused so far');
    send({ type: 'outbox.stats', counters: counters({ depth: 5, dropped: 4 }) });
    expect(actor.getSnapshot().value).toMatchObject({ open: { capacity: 'ok' } });
    expect(actor.getSnapshot().context.counters.dropped).toBe(4);
  });

  it("is unwritable (not healthy, the disk's reason shown) while the disk refuses writes, and leaves it by itself", () => {
    const { actor, send, commands } = start();
    send({ type: 'outbox.opened', counters: counters({ depth: 2 }) });
    send({ type: 'link.up' });
    send({ type: 'outbox.stats', counters: counters({ depth: 2, full: true, unwritable: 'disk_full: writing the outbox log: ENOSPC' }) });
    expect(actor.getSnapshot().value).toEqual({ open: { delivery: 'draining', capacity: 'unwritable' } });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(false);
    expect(actor.getSnapshot().context.problem).toBe('refusing new messages, delivering the 2 it holds: disk_full: writing the outbox log: ENOSPC');
    expect(commands()).toEqual(['drain.start']); // what it holds still goes out
    send({ type: 'outbox.stats', counters: counters({ depth: 0 }) });
    expect(actor.getSnapshot().value).toMatchObject({ open: { capacity: 'ok' } });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
  });

  it('ends crashed when the store fails, so the supervisor restarts it', async () => {
    const { actor, send, store } = start();
    send({ type: 'outbox.opened', counters: counters() });
    send({ type: 'outbox.failed', error: { code: 'EIO', message: 'i/o error' } });
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().context.error).toEqual({ code: 'EIO', message: 'i/o error' });
    expect(actor.getSnapshot().output).toEqual({ error: { code: 'EIO', message: 'i/o error' } }); // the supervisor logs and shows it
    expect(store.liveCount).toBe(0);
    const crashing = createActor(
      outboxMachine.provide({
        actors: {
          outboxStore: fromCallback(() => {
            throw new Error('EACCES');
          }),
        },
      }),
    );
    crashing.start();
    expect(crashing.getSnapshot().status).toBe('done');
  });
});
