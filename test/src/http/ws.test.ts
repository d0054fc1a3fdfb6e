import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { httpServerActor } from '../../../src/actors/http-server.js';
import { Closing } from '../../../src/closing.js';
import { DeviceHub } from '../../../src/devices/hub.js';
import { createLogger } from '../../../src/log.js';
import { waitFor } from '../../support/ports.js';
import { record } from '../../support/recorder.js';
import { appFor, fakeTree } from '../../support/tree.js';

const log = createLogger({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A real server on a loopback port serving the app over a fake-driven tree (and peripherals' readings from a hub). */
async function serve(options: { token?: string; hub?: DeviceHub; coalesceMs?: number } = {}) {
  const tree = fakeTree();
  const { token, hub } = options;
  const app = appFor(tree, { token, wsCoalesceMs: options.coalesceMs ?? 50, devices: hub ? { hub, profiles: () => undefined } : undefined });
  const closing = new Closing();
  const run = record(httpServerActor({ fetch: app.fetch, closing, log }), { name: 'http', host: '127.0.0.1', port: 0 });
  const { port } = await waitFor(() => run.events.find((e) => e.type === 'server.listening'), 'listening');
  cleanups.push(async () => {
    run.stop();
    tree.actor.stop();
    await closing.settled();
  });
  return { tree, url: `ws://127.0.0.1:${port}/ws` };
}

async function connect(url: string, headers?: Record<string, string>) {
  const ws = new WebSocket(url, { headers });
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const closed = new Promise((resolve) => ws.once('close', resolve));
  cleanups.push(() => ws.close());
  return { ws, messages, closed };
}

/** A client of a server with (or without) peripherals. */
async function readingsClient(hub?: DeviceHub) {
  const { url } = await serve({ hub });
  return connect(url);
}

describe('/ws', () => {
  it('sends the whole tree on connect, then coalesced per-actor changes', async () => {
    const { tree, url } = await serve();
    const { messages } = await connect(url);
    await waitFor(() => messages.length > 0, 'initial state');
    expect(messages[0]).toMatchObject({ type: 'state', version: 1, tree: { id: 'supervisor' } });

    await tree.healthy();
    tree.dropLink(); // online then backingOff within one coalescing window
    const linkUpdates = () => messages.filter((m) => m.type === 'actor' && m.actor.id === 'link');
    await waitFor(() => linkUpdates().length > 0, 'link change');
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(linkUpdates()).toHaveLength(1);
    expect(linkUpdates()[0]).toMatchObject({ path: ['supervisor', 'link'], actor: { state: 'backingOff', context: { attempt: 1 } } });
    expect(linkUpdates()[0].actor.children).toBeUndefined();
  });

  it('sends the first change after a quiet spell at once and holds the next ones for the window', async () => {
    const { tree, url } = await serve({ coalesceMs: 60_000 });
    const { messages } = await connect(url);
    await waitFor(() => messages.length > 0, 'initial state');
    await tree.healthy(); // one turn of the event loop: one flush, not 60 s later
    const link = () => messages.filter((m) => m.type === 'actor' && m.actor.id === 'link');
    await waitFor(() => link().some((m) => m.actor.state.session === 'online'), 'link online at once');
    tree.dropLink();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(link().map((m) => m.actor.state)).toEqual([{ session: 'online' }]); // the drop waits for the window
  });

  it('answers malformed client messages with an error frame and keeps streaming', async () => {
    const { url } = await serve();
    const { ws, messages } = await connect(url);
    ws.send('not json');
    ws.send(JSON.stringify({ type: 'subscribe-everything' }));
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    ws.send(JSON.stringify({ type: 'ping' }));
    await waitFor(() => messages.some((m) => m.type === 'pong'), 'pong');
    const errors = messages.filter((m) => m.type === 'error');
    expect(errors.map((e) => e.message)).toEqual([
      'not valid JSON',
      'expected {"type":"ping"}, {"type":"state"}, {"type":"subscribe","devices":"*"} or {"type":"write","device","command"}',
      'send JSON text frames',
    ]);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.send(JSON.stringify({ type: 'state' }));
    await waitFor(() => messages.filter((m) => m.type === 'state').length === 2, 'state on request');
  });

  it('with a token, accepts it as a header or a single-use ticket, never in the URL', async () => {
    const token = 'tok-0123456789abcdef';
    const { url } = await serve({ token });
    const http = url.replace('ws://', 'http://').replace('/ws', '');
    await expect(connect(url)).rejects.toThrow(/401/);
    await expect(connect(`${url}?access_token=${token}`)).rejects.toThrow(/401/);
    const byHeader = await connect(url, { Authorization: `Bearer ${token}` });

    expect((await fetch(`${http}/api/v1/ws-ticket`, { method: 'POST' })).status).toBe(401);
    const issued = await fetch(`${http}/api/v1/ws-ticket`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    const { ticket, expiresInSeconds } = (await issued.json()) as { ticket: string; expiresInSeconds: number };
    expect(expiresInSeconds).toBe(30);
    const byTicket = await connect(`${url}?ticket=${ticket}`);
    await waitFor(() => byHeader.messages.length > 0 && byTicket.messages.length > 0, 'state for both');
    await expect(connect(`${url}?ticket=${ticket}`)).rejects.toThrow(/401/); // used once already
    await expect(connect(`${url}?ticket=made-up`)).rejects.toThrow(/401/);
  });

  it('tells which events changed an actor', async () => {
    const { tree, url } = await serve();
    const { messages } = await connect(url);
    await tree.healthy();
    tree.dropLink();
    await waitFor(() => messages.some((m) => m.type === 'actor' && m.actor.id === 'link' && m.actor.state === 'backingOff'), 'link backing off');
    const update = messages.findLast((m) => m.type === 'actor' && m.actor.id === 'link');
    expect(update.events.length).toBeGreaterThan(0);
    expect(update.events.every((e: unknown) => typeof e === 'string')).toBe(true);
  });
});

describe('/ws peripheral readings', () => {
  it('a client gets the readings of the devices it subscribed to, in order, until it unsubscribes', async () => {
    const hub = new DeviceHub();
    const { ws, messages } = await readingsClient(hub);
    ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'] }));
    await waitFor(() => messages.some((m) => m.type === 'subscribed'), 'subscribed');
    expect(messages.find((m) => m.type === 'subscribed')).toEqual({ type: 'subscribed', devices: ['a'] });
    expect(hub.listenerCount).toBe(1);
    for (let i = 0; i < 100; i++) hub.publish(i % 2 ? 'a' : 'b', { line: `l${i}`, ts: i });
    await waitFor(() => messages.filter((m) => m.type === 'reading').length === 50, '50 readings');
    const readings = messages.filter((m) => m.type === 'reading');
    expect(readings.every((m) => m.device === 'a')).toBe(true);
    expect(readings.map((m) => m.reading.ts)).toEqual(Array.from({ length: 50 }, (_, k) => 2 * k + 1));
    ws.send(JSON.stringify({ type: 'subscribe', devices: '*' })); // replaces the first subscription
    await waitFor(() => messages.filter((m) => m.type === 'subscribed').length === 2, 'subscribed to all');
    expect(hub.listenerCount).toBe(1);
    hub.publish('b', { line: 'to all', ts: 1 });
    await waitFor(() => messages.some((m) => m.reading?.line === 'to all'), 'b reading');
    ws.send(JSON.stringify({ type: 'unsubscribe' }));
    await waitFor(() => hub.listenerCount === 0, 'unsubscribed');
  });

  it('refuses a bad subscription with an error frame; a closed client leaves no listener behind', async () => {
    const hub = new DeviceHub();
    const { ws, messages, closed } = await readingsClient(hub);
    ws.send(JSON.stringify({ type: 'subscribe', devices: 5 }));
    ws.send(JSON.stringify({ type: 'subscribe', devices: [1, 2] }));
    await waitFor(() => messages.filter((m) => m.type === 'error').length === 2, 'two errors');
    expect(messages.filter((m) => m.type === 'error').map((m) => m.message)).toEqual([
      'devices must be "*" or an array of device ids',
      'devices must be "*" or an array of device ids',
    ]);
    ws.send(JSON.stringify({ type: 'subscribe' }));
    await waitFor(() => hub.listenerCount === 1, 'subscribed');
    ws.close();
    await closed;
    await waitFor(() => hub.listenerCount === 0, 'the listener removed on close');
  });

  it('a batched client gets every reading in order in few frames; a plain client beside it still one frame each', async () => {
    const hub = new DeviceHub();
    const { url } = await serve({ hub });
    const batched = await connect(url);
    const plain = await connect(url);
    batched.ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'], batch: true }));
    plain.ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'] }));
    await waitFor(() => batched.messages.some((m) => m.type === 'subscribed'), 'batched subscribed');
    await waitFor(() => plain.messages.some((m) => m.type === 'subscribed'), 'plain subscribed');
    expect(batched.messages.find((m) => m.type === 'subscribed')).toEqual({ type: 'subscribed', devices: ['a'], batch: true });
    expect(plain.messages.find((m) => m.type === 'subscribed')).toEqual({ type: 'subscribed', devices: ['a'] });
    const total = 1000;
    for (let i = 0; i < total; i++) hub.publish('a', { line: `l${i}`, ts: i });
    hub.reject('a', { reason: 'not_json', message: 'bad', at: total });
    const inBatches = () => batched.messages.filter((m) => m.type === 'readings').flatMap((m) => m.frames);
    await waitFor(() => inBatches().length === total + 1, 'every reading in batches');
    await waitFor(() => plain.messages.filter((m) => m.type === 'reading' || m.type === 'rejected').length === total + 1, 'every plain frame');
    const batches = batched.messages.filter((m) => m.type === 'readings');
    // 256 a frame at most: at least 4 frames, and far fewer than one per reading
    expect(batches.length).toBeGreaterThanOrEqual(4);
    expect(batches.length).toBeLessThan(20);
    expect(batches.every((m) => m.frames.length <= 256)).toBe(true);
    expect(batched.messages.some((m) => m.type === 'reading')).toBe(false);
    const frames = inBatches();
    expect(frames.slice(0, total).map((f) => f.reading.ts)).toEqual(Array.from({ length: total }, (_, k) => k));
    expect(frames.slice(0, total).every((f) => f.type === 'reading' && f.device === 'a')).toBe(true);
    expect(frames[total]).toEqual({ type: 'rejected', device: 'a', reason: 'not_json', message: 'bad', at: total });
    expect(plain.messages.some((m) => m.type === 'readings')).toBe(false);
    expect(plain.messages.filter((m) => m.type === 'reading').map((m) => m.reading.ts)).toEqual(Array.from({ length: total }, (_, k) => k));
  });

  it('a lone batched reading goes out within the window, and a batch waiting at unsubscribe is still sent', async () => {
    const hub = new DeviceHub();
    const { ws, messages } = await readingsClient(hub);
    ws.send(JSON.stringify({ type: 'subscribe', devices: '*', batch: true }));
    await waitFor(() => messages.some((m) => m.type === 'subscribed'), 'subscribed');
    const sentAt = performance.now();
    hub.publish('a', { line: 'one', ts: 1 });
    await waitFor(() => messages.some((m) => m.type === 'readings'), 'one batch');
    expect(performance.now() - sentAt).toBeLessThan(1000);
    expect(messages.find((m) => m.type === 'readings').frames).toEqual([{ type: 'reading', device: 'a', reading: { line: 'one', ts: 1 } }]);
    hub.publish('a', { line: 'two', ts: 2 });
    ws.send(JSON.stringify({ type: 'unsubscribe' }));
    await waitFor(() => hub.listenerCount === 0, 'unsubscribed');
    await waitFor(() => messages.filter((m) => m.type === 'readings').length === 2, 'the waiting batch');
    expect(messages.filter((m) => m.type === 'readings')[1].frames[0].reading.line).toBe('two');
  });

  it('refuses a bad batch value with a clear error and goes on serving the connection', async () => {
    const hub = new DeviceHub();
    const { ws, messages, closed } = await readingsClient(hub);
    for (const batch of ['yes', 1, null, { ms: 10 }]) ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'], batch }));
    await waitFor(() => messages.filter((m) => m.type === 'error').length === 4, 'four errors');
    expect(messages.filter((m) => m.type === 'error')).toEqual(Array(4).fill({ type: 'error', error: 'bad_message', message: 'batch must be true or false' }));
    expect(hub.listenerCount).toBe(0);
    ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'], batch: false }));
    await waitFor(() => messages.some((m) => m.type === 'subscribed'), 'subscribed');
    hub.publish('a', { line: 'still here', ts: 1 });
    await waitFor(() => messages.some((m) => m.type === 'reading'), 'a single frame');
    ws.send(JSON.stringify({ type: 'subscribe', devices: ['a'], batch: true }));
    await waitFor(() => messages.filter((m) => m.type === 'subscribed').length === 2, 'batched now');
    hub.publish('a', { line: 'batched', ts: 2 });
    await waitFor(() => messages.some((m) => m.type === 'readings'), 'a batch');
    ws.close();
    await closed;
    await waitFor(() => hub.listenerCount === 0, 'the listener removed on close');
  });

  it('without peripherals, a subscription is answered as unavailable', async () => {
    const { ws, messages } = await readingsClient();
    ws.send(JSON.stringify({ type: 'subscribe', devices: '*' }));
    await waitFor(() => messages.some((m) => m.type === 'error'), 'error');
    expect(messages.find((m) => m.type === 'error')).toMatchObject({ error: 'unavailable' });
  });
});
