import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { runAgent, runCli, uniqueThingName, waitForHealth, type AgentProcess } from '../support/agent.js';
import { freePort } from '../support/ports.js';
import { rawRequest } from '../support/raw-http.js';

/** Where the outbox chart is now, from /api/v1/state. */
async function outboxState(port: number): Promise<string> {
  const answer = await rawRequest(port, { path: '/api/v1/state' });
  const tree = JSON.parse(answer.body).tree as { children: Array<{ id: string; state: unknown }> };
  return JSON.stringify(tree.children.find((c) => c.id === 'outbox')?.state);
}

/** A WebSocket upgrade with the given headers: the status it got (101 when it opened). */
function upgrade(port: number, headers: Record<string, string>, path = '/ws'): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.once('open', () => (ws.close(), resolve(101)));
    ws.once('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
    ws.once('error', () => resolve(0));
  });
}

async function startAgent(http: Record<string, unknown>): Promise<{ agent: AgentProcess; port: number }> {
  const port = await freePort();
  const agent = runAgent({
    config: {
      thingName: uniqueThingName('browser'),
      mqtt: { url: inject('mqttUrl'), reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
      http: { port, ...http },
      firmware: { enabled: true, registry: { url: '127.0.0.1:9', insecure: true } },
    },
  });
  await waitForHealth(`http://127.0.0.1:${port}`, 200, 15_000).catch((error) => {
    throw new Error(`${error}\n${agent.stdout()}\n${agent.stderr()}`);
  });
  return { agent, port };
}

const stop = async (agent: AgentProcess | undefined) => {
  if (agent && agent.child.exitCode === null) agent.child.kill('SIGTERM');
  await agent?.exited;
};

/** The browser-side attacks of issue 12 on the no-token default, against the built agent over loopback. */
describe('browser-side attacks on the default (loopback, no token)', () => {
  let agent: AgentProcess;
  let port: number;
  beforeAll(async () => ({ agent, port } = await startAgent({})));
  afterAll(() => stop(agent));

  it('refuses a cross-origin POST /api/v1/outbox/pause (a form a page submits), and the outbox keeps delivering', async () => {
    const answer = await rawRequest(port, {
      method: 'POST',
      path: '/api/v1/outbox/pause',
      headers: { origin: 'http://evil.example', 'content-type': 'text/plain', 'content-length': '0' },
    });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'forbidden', message: expect.stringContaining('http://evil.example') });
    expect(await outboxState(port)).not.toContain('paused');
  });

  it('takes the same POST without an Origin (curl, scripts) and from the same origin', async () => {
    const same = await rawRequest(port, { method: 'POST', path: '/api/v1/outbox/pause', headers: { origin: `http://127.0.0.1:${port}` } });
    expect(same.status).toBe(202);
    expect(await outboxState(port)).toContain('paused');
    const plain = await rawRequest(port, { method: 'POST', path: '/api/v1/outbox/resume' });
    expect(plain.status).toBe(202);
    expect(await outboxState(port)).not.toContain('paused');
  });

  it('refuses a cross-origin WebSocket and takes a same-origin one', async () => {
    expect(await upgrade(port, { origin: 'http://evil.example' })).toBe(403);
    expect(await upgrade(port, { origin: 'null' })).toBe(403);
    expect(await upgrade(port, { origin: `http://127.0.0.1:${port}` })).toBe(101);
    expect(await upgrade(port, {})).toBe(101);
  });

  it('refuses a rebound Host (DNS rebinding) on the API, /ws and the dashboard, and keeps the device endpoints open to any Host', async () => {
    const rebound = { host: `evil.example:${port}` };
    for (const path of ['/api/v1/state', '/api/v1/outbox', '/']) {
      const answer = await rawRequest(port, { path, headers: rebound });
      expect(answer.status, path).toBe(403);
      expect(answer.body, path).toContain('http.allowedHosts');
    }
    expect((await rawRequest(port, { method: 'POST', path: '/api/v1/outbox/pause', headers: rebound })).status).toBe(403);
    expect(await outboxState(port)).not.toContain('paused');
    expect(await upgrade(port, rebound)).toBe(403);
    for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await rawRequest(port, { path: '/api/v1/state', headers: { host } })).status, host).toBe(200);
    }
    // OtaFlux's device endpoints answer whatever name a device was flashed with.
    const device = await rawRequest(port, { path: '/version?device=-bad', headers: { host: 'ota.factory.lan' } });
    expect(device.status).toBe(400);
    expect((await rawRequest(port, { path: '/health', headers: { host: 'probe.example' } })).status).toBe(200);
  });

  it('refuses text/plain and form bodies on JSON routes with 415 and says what to send', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const answer = await rawRequest(port, {
        method: 'POST',
        path: '/api/v1/publish',
        headers: { 'content-type': type },
        body: '{"topic":"a/b","payload":"x"}',
      });
      expect(answer.status, type).toBe(415);
      expect(JSON.parse(answer.body), type).toMatchObject({
        error: 'unsupported_media_type',
        message: expect.stringContaining('Content-Type: application/json'),
      });
    }
    const form = await rawRequest(port, {
      method: 'POST',
      path: '/api/v1/outbox/pause',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
    expect(await outboxState(port)).not.toContain('paused');
    const json = await rawRequest(port, {
      method: 'POST',
      path: '/api/v1/publish',
      headers: { 'content-type': 'application/json' },
      body: '{"topic":"a/b","payload":"x"}',
    });
    expect(json.status).toBe(202);
  });
});

describe('the token', () => {
  const token = 'correct-horse-battery-staple';
  let agent: AgentProcess;
  let port: number;
  beforeAll(async () => ({ agent, port } = await startAgent({ token })));
  afterAll(() => stop(agent));

  it('is accepted with the Bearer scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      expect((await rawRequest(port, { path: '/api/v1/state', headers: { authorization: `${scheme} ${token}` } })).status, scheme).toBe(200);
    }
    expect((await rawRequest(port, { path: '/api/v1/state', headers: { authorization: `Basic ${token}` } })).status).toBe(401);
  });

  it('is never taken from a query string (a URL ends up in logs and history): /ws takes a single-use ticket', async () => {
    expect((await rawRequest(port, { path: `/api/v1/state?access_token=${token}` })).status).toBe(401);
    expect(await upgrade(port, {})).toBe(401);
    expect(await upgrade(port, {}, `/ws?access_token=${token}`)).toBe(401);
    const { ticket } = JSON.parse((await rawRequest(port, { method: 'POST', path: '/api/v1/ws-ticket', headers: { authorization: `Bearer ${token}` } })).body);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?ticket=${ticket}`);
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.close();
  });
});

describe('--print-config', () => {
  it('prints no secret, whichever key holds it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-secrets-'));
    const secrets = {
      token: 'http-token-1234567890-secret',
      mqtt: 'mqtt-password-secret-value',
      registry: 'registry-password-secret-value',
      webhook: 'harbor-webhook-secret-value',
      slack: 'https://hooks.slack.com/services/T000/B000/slack-secret-value',
    };
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        stateDir: join(dir, 'state'),
        http: { token: secrets.token },
        mqtt: { url: 'mqtt://127.0.0.1:1883', username: 'agent', password: secrets.mqtt },
        firmware: { registry: { url: 'registry.local', username: 'robot', password: secrets.registry }, webhookSecret: secrets.webhook },
        monitor: { slackWebhookUrl: secrets.slack },
      }),
    );
    const { code, stdout } = runCli(['--print-config', '--config', file]);
    expect(code).toBe(0);
    for (const [name, value] of Object.entries(secrets)) expect(stdout, name).not.toContain(value);
    const printed = JSON.parse(stdout);
    expect(printed.firmware.webhookSecret).toBe('***');
    expect(printed.monitor.slackWebhookUrl).toBe('***');
    expect(printed.mqtt.username).toBe('agent');
  });
});
