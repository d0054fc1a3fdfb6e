import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outbox, type OutboxLimits } from '../../../src/outbox/queue.js';
import { appFor, fakeTree, json } from '../../support/tree.js';

const limits: OutboxLimits = { maxMessages: 100, maxBytes: 1 << 20, overflow: 'dropOldest', segmentBytes: 1 << 20 };

async function setup(options: { limits?: Partial<OutboxLimits>; token?: string } = {}) {
  const outbox = await Outbox.open(mkdtempSync(join(tmpdir(), 'edgevisor-publish-')), { ...limits, ...options.limits });
  const tree = fakeTree();
  const app = appFor(tree, { outbox, token: options.token });
  const publish = (body: unknown, headers: Record<string, string> = {}) =>
    app.request('/api/v1/publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  return { outbox, tree, app, publish };
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
    const res = await appFor(tree).request('/api/v1/publish', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"topic":"a","payload":"x"}' });
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
    const delivery = () => (tree.actor.getSnapshot().children.outbox!.getSnapshot().value as { open: { delivery: string } }).open.delivery;
    expect(delivery()).toBe('draining');
    expect((await app.request('/api/v1/outbox/pause', { method: 'POST' })).status).toBe(202);
    expect(delivery()).toBe('paused');
    expect((await app.request('/api/v1/outbox/resume', { method: 'POST' })).status).toBe(202);
    expect(delivery()).toBe('draining');
  });
});
