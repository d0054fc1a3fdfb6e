import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { freePort, waitFor } from '../support/ports.js';
import { memoryOf, rawRequest, resetPeak } from '../support/raw-http.js';

const MiB = 1024 * 1024;

/** `total` bytes of a JSON-looking body in 1 MiB chunks, made as they are read. */
function bigBody(total: number): Readable {
  const chunk = Buffer.alloc(MiB, 'x');
  let sent = 0;
  return new Readable({
    read() {
      if (sent === 0) this.push('{"type":"PUSH_ARTIFACT","pad":"');
      if (sent >= total) return void this.push(null);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/** Runs `attack` and returns how far the agent's resident memory rose above where it was. */
async function rssGrowth(agent: AgentProcess, attack: () => Promise<unknown>): Promise<number> {
  const pid = agent.child.pid!;
  resetPeak(pid);
  const before = memoryOf(pid).rss;
  await attack();
  return memoryOf(pid).peak - before;
}

/** The attacks of issue 12 "Resource limits on every input", against the built agent over loopback. */
describe('resource limits on HTTP and WebSocket input', () => {
  let agent: AgentProcess;
  let port: number;
  let base: string;

  beforeAll(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    agent = runAgent({
      config: {
        thingName: `limits-${process.pid}`,
        mqtt: { url: inject('mqttUrl'), reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
        http: { port },
        // A registry nobody answers: the webhook must refuse before any refresh.
        firmware: { enabled: true, registry: { url: '127.0.0.1:9', insecure: true } },
      },
    });
    await waitForHealth(base, 200, 15_000).catch((error) => {
      throw new Error(`${error}\n${agent.stdout()}\n${agent.stderr()}`);
    });
  });
  afterAll(async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
  });

  const harbor = { path: '/webhooks/harbor', method: 'POST' };

  it('refuses a 160 MiB webhook body with a Content-Length with 413, before reading it, in bounded memory', async () => {
    let answer: Awaited<ReturnType<typeof rawRequest>> | undefined;
    const growth = await rssGrowth(agent, async () => {
      answer = await rawRequest(port, {
        ...harbor,
        headers: { 'content-type': 'application/json', 'content-length': String(160 * MiB) },
        body: bigBody(160 * MiB),
      });
    });
    expect(answer!.status).toBe(413);
    expect(answer!.body).toMatch(/65536 bytes/);
    expect(growth).toBeLessThan(50 * MiB);
    await waitForHealth(base, 200);
  });

  it('refuses a 160 MiB chunked webhook body (no Content-Length) with 413 once the limit is passed, in bounded memory', async () => {
    let answer: Awaited<ReturnType<typeof rawRequest>> | undefined;
    const growth = await rssGrowth(agent, async () => {
      answer = await rawRequest(port, { ...harbor, headers: { 'content-type': 'application/json' }, body: bigBody(160 * MiB) });
    });
    expect(answer!.status).toBe(413);
    expect(growth).toBeLessThan(50 * MiB);
    await waitForHealth(base, 200);
  });

  it('still takes a webhook of normal size (a bad one gets its 422, not a 413)', async () => {
    const answer = await rawRequest(port, {
      ...harbor,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'PUSH_ARTIFACT', event_data: 'x'.repeat(10_000) }),
    });
    expect(answer.status).toBe(422);
  });

  it('refuses a 40 MiB chunked publish body with 413 in bounded memory', async () => {
    let answer: Awaited<ReturnType<typeof rawRequest>> | undefined;
    const growth = await rssGrowth(agent, async () => {
      answer = await rawRequest(port, { method: 'POST', path: '/api/v1/publish', headers: { 'content-type': 'application/json' }, body: bigBody(40 * MiB) });
    });
    expect(answer!.status).toBe(413);
    expect(growth).toBeLessThan(50 * MiB);
  });

  const open = async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const messages: any[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    return { ws, messages, closed };
  };

  it('closes a WebSocket that sends a 99 MiB frame with 1009, without taking the frame in', async () => {
    const { ws, closed } = await open();
    const frame = 'x'.repeat(99 * MiB);
    const growth = await rssGrowth(agent, async () => {
      ws.send(frame);
      expect((await closed).code).toBe(1009);
    });
    expect(growth).toBeLessThan(50 * MiB);
    await waitForHealth(base, 200);
  });

  it('answers a flood of 5,000 state requests from one client with a bounded number of trees, then closes it with 1008', async () => {
    const { ws, messages, closed } = await open();
    await waitFor(() => messages.length > 0, 'the first state');
    for (let i = 0; i < 5000; i++) ws.send('{"type":"state"}');
    const { code } = await closed;
    expect(code).toBe(1008);
    const trees = messages.filter((m) => m.type === 'state').length;
    expect(trees).toBeLessThan(100);
    expect(messages.some((m) => m.type === 'error' && m.error === 'rate_limited')).toBe(true);
    // Another client is served as before.
    const other = await open();
    await waitFor(() => other.messages.find((m) => m.type === 'state'), 'state for a well-behaved client');
    other.ws.close();
  });
});
