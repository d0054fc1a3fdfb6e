import { describe, expect, it } from 'vitest';
import { DeviceHub } from '../../../src/devices/hub.js';
import { DeviceWriter } from '../../../src/devices/writer.js';
import { createLogger } from '../../../src/log.js';
import { appFor, fakeTree, json } from '../../support/tree.js';

function appWith(token?: string) {
  const tree = fakeTree();
  return { tree, app: appFor(tree, { token }) };
}

describe('GET /health', () => {
  it('is 503 while the link is still connecting, 200 with each concern once healthy, 503 with the reason when the link drops', async () => {
    const { tree, app } = appWith();
    let res = await app.request('/health');
    expect(res.status).toBe(503);

    await tree.healthy();
    res = await app.request('/health');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      status: 'ok',
      phase: 'running',
      concerns: {
        link: { state: 'session.online', healthy: true },
        outbox: {
          state: 'open.delivery.holding,capacity.ok',
          healthy: true,
          counters: { depth: 0, bytes: 0, full: false, enqueued: 0, delivered: 0, dropped: 0, refused: 0 },
        },
        http: { state: 'listening', healthy: true },
      },
      reasons: [],
    });

    tree.dropLink();
    res = await app.request('/health');
    expect(res.status).toBe(503);
    const body = await json(res);
    expect(body.reasons).toEqual(['link: backingOff: connect ECONNREFUSED 127.0.0.1:1883']);
    expect(body.concerns.http.healthy).toBe(true);
  });

  it('is 503 while the supervisor stops', async () => {
    const { tree, app } = appWith();
    await tree.healthy();
    tree.actor.send({ type: 'supervisor.stop' });
    const res = await app.request('/health');
    expect(res.status).toBe(503);
    expect((await json(res)).reasons[0]).toMatch(/^supervisor: (stopping|stopped)$/);
  });
});

describe('GET /api/v1/state', () => {
  it('returns the actor tree as plain JSON without private context', async () => {
    const { tree, app } = appWith();
    await tree.healthy();
    const res = await app.request('/api/v1/state');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.version).toBe(1);
    expect(body.status).toBe('running');
    expect(body.tree).toMatchObject({ id: 'supervisor', status: 'active', state: { running: { link: 'up', outbox: 'up', http: 'up', broker: 'disabled' } } });
    const link = body.tree.children.find((c: { id: string }) => c.id === 'link');
    expect(link).toMatchObject({ state: { session: 'online' }, tags: ['healthy', 'online'], context: { attempt: 0, broker: 'mqtt://127.0.0.1:1883' } });
    expect(link.children.map((c: { id: string }) => c.id)).toEqual(['mqttClient']);
    expect(JSON.stringify(body)).not.toContain('_inputs');
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with process figures and one gauge per concern state', async () => {
    const { tree, app } = appWith();
    await tree.healthy();
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('process_resident_memory_bytes');
    expect(text).toContain('edgevisor_supervisor_state{state="running"} 1');
    expect(text).toContain('edgevisor_concern_state{concern="link",state="session.online"} 1');
    expect(text).toContain('edgevisor_concern_healthy{concern="http"} 1');
    tree.dropLink();
    const after = await (await app.request('/metrics')).text();
    expect(after).toContain('edgevisor_concern_state{concern="link",state="backingOff"} 1');
    expect(after).not.toContain('state="session.online"');
    expect(after).toContain('edgevisor_concern_healthy{concern="link"} 0');
  });
});

describe('errors and auth', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const { app } = appWith();
    const res = await app.request('/api/v1/nope', { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await json(res)).toEqual({ error: 'not_found', message: 'no route for POST /api/v1/nope' });
  });

  it('with a token, /api/v1 needs it; /health and /metrics stay open', async () => {
    const token = 'tok-0123456789abcdef';
    const { tree, app } = appWith(token);
    await tree.healthy();
    expect((await app.request('/api/v1/state')).status).toBe(401);
    expect((await app.request('/api/v1/state', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await app.request('/api/v1/state', { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await app.request('/health')).status).toBe(200);
    expect((await app.request('/metrics')).status).toBe(200);
  });

  it('POST /api/v1/devices/<id>/write follows the API token rules, and says why when the devices concern is not running', async () => {
    const token = 'tok-0123456789abcdef';
    const tree = fakeTree();
    const hub = new DeviceHub();
    const writer = new DeviceWriter({ manager: () => undefined, profile: () => undefined, hub, log: createLogger({ level: 'silent' }) });
    const app = appFor(tree, { token, devices: { hub, profiles: () => undefined, writer } });
    const write = (headers: Record<string, string>) =>
      app.request('/api/v1/devices/led/write', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ command: 'LED ON' }),
      });
    expect((await write({})).status).toBe(401);
    const res = await write({ Authorization: `Bearer ${token}` });
    expect(res.status).toBe(503);
    expect(await json(res)).toEqual({
      id: expect.any(String),
      device: 'led',
      accepted: false,
      reason: 'unavailable',
      message: 'the devices concern is not running',
    });
  });
});
