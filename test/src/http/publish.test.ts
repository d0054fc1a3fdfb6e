import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeadLetters } from '../../../src/outbox/dead-letters.js';
import { Outbox, type OutboxLimits } from '../../../src/outbox/queue.js';
import { canMount, mountTmpfs } from '../../support/tmpfs.js';
import { appFor, fakeTree, json } from '../../support/tree.js';

const limits: OutboxLimits = { maxMessages: 100, maxBytes: 1 << 20, overflow: 'dropOldest', segmentBytes: 1 << 20 };

async function setup(options: { limits?: Partial<OutboxLimits>; token?: string; dir?: string } = {}) {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'edgevisor-publish-'));
  const outbox = await Outbox.open(join(dir, 'outbox'), { ...limits, ...options.limits });
  const { store: deadLetters } = await DeadLetters.open(join(dir, 'dead-letters'), 10);
  const tree = fakeTree();
  const app = appFor(tree, { outbox, deadLetters, token: options.token });
  const publish = (body: unknown | Buffer, headers: Record<string, string> = {}) =>
    app.request('/api/v1/publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
  return { outbox, deadLetters, tree, app, publish };
}

describe('POST /api/v1/publish', () => {
  it('accepts a message once it is durable (202) and queues it with its options', async () => {
    const { outbox, app, publish } = await setup();
    const res = await publish({ topic: 'local/app/reading', payload: '{"t":21.5}', qos: 1, retain: true });
    expect(res.status).toBe(202);
    expect(await json(res)).toEqual({ accepted: true, id: 1, depth: 1 });
    const queued = outbox.next();
    expect(queued?.message).toEqual({ topic: 'local/app/reading', payload: Buffer.from('{"t":21.5}'), qos: 1, retain: true });
    expect(await json(await app.request('/api/v1/outbox'))).toMatchObject({ depth: 1, enqueued: 1 });
  });

  it('defaults to QoS 1, not retained, and decodes base64 payloads', async () => {
    const { outbox, publish } = await setup();
    expect((await publish({ topic: 'bin', payload: Buffer.from([0, 255, 1]).toString('base64'), encoding: 'base64' })).status).toBe(202);
    expect(outbox.next()?.message).toEqual({ topic: 'bin', payload: Buffer.from([0, 255, 1]), qos: 1, retain: false });
  });

  it.each([
    ['a wildcard topic', { topic: 'a/#', payload: 'x' }, 400, 'topic: must not contain the wildcards + or # (it is a topic to publish to)'],
    ['an empty topic', { topic: '', payload: 'x' }, 400, 'topic: must not be empty'],
    ['no payload', { topic: 'a' }, 400, 'payload: Invalid input: expected string, received undefined'],
    ['QoS 2', { topic: 'a', payload: 'x', qos: 2 }, 400, 'qos: Invalid input'],
    ['an unknown key', { topic: 'a', payload: 'x', colour: 'red' }, 400, 'Unrecognized key: "colour"'],
    ['malformed JSON', '{"topic":', 400, 'Malformed JSON'],
    ['a payload over the limit', { topic: 'a', payload: 'x'.repeat(2000) }, 413, 'payload is 2000 bytes; outbox.maxPayloadBytes is 1024'],
    // Each of these was queued before, changed: as an empty or shortened payload, or with U+FFFD in place.
    ['a payload that is not base64', { topic: 'a', payload: 'not base64!', encoding: 'base64' }, 400, 'payload: is not valid base64'],
    ['base64 with a stray character', { topic: 'a', payload: 'AAEC*A==', encoding: 'base64' }, 400, 'payload: is not valid base64'],
    ['a topic with a lone surrogate', '{"topic":"a/\\ud800","payload":"x"}', 400, 'topic: must be valid Unicode (it holds a lone surrogate'],
    ['a text payload with a lone surrogate', '{"topic":"a","payload":"x\\udc00"}', 400, 'payload: must be valid Unicode (it holds a lone surrogate)'],
    ['a body that is not UTF-8', Buffer.from('{"topic":"a/\xff\xfe","payload":"x"}', 'latin1'), 400, 'the request body is not valid UTF-8'],
    ['a "$" topic', { topic: '$SYS/broker/clients', payload: 'x' }, 400, 'topic: must not start with "$"'],
    ['a topic over the level limit', { topic: 'a/b/c/d/e/f/g/h/i', payload: 'x' }, 400, 'topic: has 9 levels; the limit is 8 (outbox.maxTopicLevels)'],
    ['a topic over the byte limit', { topic: 'é'.repeat(129), payload: 'x' }, 400, 'topic: is 258 bytes; the limit is 256 (outbox.maxTopicBytes)'],
  ])('refuses %s with a clear error and queues nothing', async (_what, body, status, message) => {
    const { outbox, publish } = await setup();
    const res = await publish(body);
    expect(res.status).toBe(status);
    expect((await json(res)).message).toContain(message);
    expect(outbox.stats().depth).toBe(0);
  });

  it('when full with rejectNew, answers 503 outbox_full and keeps what it had', async () => {
    const { outbox, publish } = await setup({ limits: { maxMessages: 1, overflow: 'rejectNew' } });
    expect((await publish({ topic: 'a', payload: 'first' })).status).toBe(202);
    const res = await publish({ topic: 'a', payload: 'second' });
    expect(res.status).toBe(503);
    expect((await json(res)).error).toBe('outbox_full');
    expect(outbox.next()?.message.payload.toString()).toBe('first');
    expect(outbox.stats()).toMatchObject({ depth: 1, refused: 1 });
  });

  it('answers 503 while the outbox is not open', async () => {
    const tree = fakeTree();
    const res = await appFor(tree).request('/api/v1/publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"topic":"a","payload":"x"}',
    });
    expect(res.status).toBe(503);
    expect((await json(res)).error).toBe('unavailable');
  });

  it('needs the token when one is configured', async () => {
    const token = 'tok-0123456789abcdef';
    const { publish } = await setup({ token });
    expect((await publish({ topic: 'a', payload: 'x' })).status).toBe(401);
    expect((await publish({ topic: 'a', payload: 'x' }, { Authorization: `Bearer ${token}` })).status).toBe(202);
  });
});

describe('POST /api/v1/outbox/pause and /resume', () => {
  it('hold delivery and let it go again', async () => {
    const { tree, app } = await setup();
    await tree.healthy();
    tree.store.current.sendBack({ type: 'link.up' });
    const delivery = () => (tree.actor.getSnapshot().children.outbox!.getSnapshot() as { value: { open: { delivery: string } } }).value.open.delivery;
    expect(delivery()).toBe('draining');
    expect((await app.request('/api/v1/outbox/pause', { method: 'POST' })).status).toBe(202);
    expect(delivery()).toBe('paused');
    expect((await app.request('/api/v1/outbox/resume', { method: 'POST' })).status).toBe(202);
    expect(delivery()).toBe('draining');
  });

  it.skipIf(!canMount)(
    'answers 507 insufficient_storage with the reason when the disk is full (a real 1 MiB tmpfs), and 202 only for what was written whole',
    async () => {
      const fs = mountTmpfs('1m');
      try {
        writeFileSync(join(fs.dir, 'ballast'), Buffer.alloc(1024 * 1024 - 16 * 1024)); // 16 KiB left
        const { outbox, publish } = await setup({ dir: fs.dir });
        const statuses: number[] = [];
        let last: { error?: string; message?: string } = {};
        for (let i = 0; i < 40 && statuses.at(-1) !== 507; i++) {
          const res = await publish({ topic: 'big', payload: Buffer.alloc(1000, i).toString('base64'), encoding: 'base64' });
          statuses.push(res.status);
          last = await json(res);
        }
        const accepted = statuses.filter((s) => s === 202).length;
        expect(statuses).toEqual([...Array(accepted).fill(202), 507]);
        expect(last).toMatchObject({ error: 'insufficient_storage' });
        expect(last.message).toMatch(/^writing the outbox log: /);
        const again = await publish({ topic: 'big', payload: 'x' });
        expect(again.status).toBe(507);
        expect((await json(again)).message).toMatch(/^the outbox refuses new messages: writing the outbox log/);
        expect(outbox.stats()).toMatchObject({ depth: accepted, enqueued: accepted });
        await outbox.close();
        expect((await Outbox.open(join(fs.dir, 'outbox'), limits).then(async (o) => (await o.close(), o.stats()))).depth).toBe(accepted);
      } finally {
        fs.unmount();
      }
    },
  );
});

describe('/api/v1/outbox/dead-letters', () => {
  it('lists, shows, retries and drops the messages moved aside', async () => {
    const { outbox, deadLetters, app } = await setup({ limits: { maxBytes: 1 << 20 } });
    const kept = await deadLetters.add(
      { topic: 'poison/x', payload: Buffer.from([1, 2, 3]), qos: 1, retain: true },
      'the connection ended within 5 s of sending it, 3 times in a row',
    );
    const other = await deadLetters.add({ topic: 'poison/y', payload: Buffer.from('y'), qos: 0, retain: false }, 'r');
    const list = await json(await app.request('/api/v1/outbox/dead-letters'));
    expect(list).toMatchObject({
      count: 2,
      deadLetters: [{ id: kept.id, topic: 'poison/x', qos: 1, retain: true, payloadBytes: 3, reason: kept.reason }, { id: other.id }],
    });
    expect(list.deadLetters[0]).not.toHaveProperty('payload');
    expect(await json(await app.request(`/api/v1/outbox/dead-letters/${kept.id}`))).toMatchObject({ id: kept.id, payload: 'AQID', encoding: 'base64' });

    const retried = await app.request(`/api/v1/outbox/dead-letters/${kept.id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    expect(outbox.next()?.message).toEqual({ topic: 'poison/x', payload: Buffer.from([1, 2, 3]), qos: 1, retain: true });
    const dropped = await app.request(`/api/v1/outbox/dead-letters/${other.id}`, { method: 'DELETE' });
    expect(await json(dropped)).toEqual({ dropped: true });
    expect(await json(await app.request('/api/v1/outbox/dead-letters'))).toEqual({ count: 0, deadLetters: [] });
    expect((await app.request(`/api/v1/outbox/dead-letters/${other.id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await app.request('/api/v1/outbox/dead-letters/../../etc/passwd')).status).toBe(404);
    expect(await (await app.request('/metrics')).text()).toMatch(/edgevisor_outbox_dead_letters 0\n/);
  });
});
