import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { httpServerActor } from '../../../src/actors/http-server.js';
import { Closing } from '../../../src/closing.js';
import { createLogger } from '../../../src/log.js';
import { waitFor } from '../../support/ports.js';
import { record } from '../../support/recorder.js';
import { appFor, fakeTree } from '../../support/tree.js';

const log = createLogger({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A real server on a loopback port serving the app over a fake-driven tree. */
async function serve(token?: string) {
  const tree = fakeTree();
  const app = appFor(tree, { token, wsCoalesceMs: 50 });
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
  cleanups.push(() => ws.close());
  return { ws, messages };
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

  it('answers malformed client messages with an error frame and keeps streaming', async () => {
    const { url } = await serve();
    const { ws, messages } = await connect(url);
    ws.send('not json');
    ws.send(JSON.stringify({ type: 'subscribe-everything' }));
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    ws.send(JSON.stringify({ type: 'ping' }));
    await waitFor(() => messages.some((m) => m.type === 'pong'), 'pong');
    const errors = messages.filter((m) => m.type === 'error');
    expect(errors.map((e) => e.message)).toEqual(['not valid JSON', 'expected {"type":"ping"}, {"type":"state"} or {"type":"subscribe","devices":"*"}', 'send JSON text frames']);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.send(JSON.stringify({ type: 'state' }));
    await waitFor(() => messages.filter((m) => m.type === 'state').length === 2, 'state on request');
  });

  it('with a token, refuses the upgrade without it and accepts it as a header or ?access_token=', async () => {
    const token = 'tok-0123456789abcdef';
    const { url } = await serve(token);
    await expect(connect(url)).rejects.toThrow(/401/);
    const byHeader = await connect(url, { Authorization: `Bearer ${token}` });
    const byQuery = await connect(`${url}?access_token=${token}`);
    await waitFor(() => byHeader.messages.length > 0 && byQuery.messages.length > 0, 'state for both');
  });
});
