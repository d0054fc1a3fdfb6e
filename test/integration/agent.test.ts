import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { Mosquitto } from '../support/mosquitto.js';
import { subscriber } from '../support/mqtt.js';
import { freePort, waitFor } from '../support/ports.js';
import { json } from '../support/tree.js';
import { requirePeer } from '../support/peers.js';

/** The built agent, run as a process with a config file, against a real mosquitto. */
describe('agent process against mosquitto', () => {
  let broker: Mosquitto;
  let agent: AgentProcess;
  let base: string;
  const thingName = `it-${process.pid}`;
  const statusTopic = `devices/${thingName}/status`;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    agent = runAgent({
      config: {
        thingName,
        mqtt: { url: broker.url, reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.4 },
        http: { host: '127.0.0.1', port },
      },
    });
  });
  afterAll(async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await broker.stop();
  });

  it('becomes healthy and says so on /health, /api/v1/state, /ws and the retained status', async () => {
    const healthy = await waitForHealth(base, 200);
    expect(healthy.body.concerns).toEqual({
      link: { state: 'session.online', healthy: true },
      outbox: { state: 'open.delivery.draining,capacity.ok', healthy: true, counters: expect.objectContaining({ depth: 0, dropped: 0 }) },
      http: { state: 'listening', healthy: true },
    });
    const state = await json(await fetch(`${base}/api/v1/state`));
    expect(state.status).toBe('running');
    expect(state.tree.children.map((c: { id: string }) => c.id).sort()).toEqual(['http', 'link', 'outbox']);

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('edgevisor_concern_healthy{concern="link"} 1');
    expect(text).toContain('process_resident_memory_bytes');

    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const first = await new Promise<any>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))));
    expect(first).toMatchObject({ type: 'state', status: 'running' });
    ws.close();

    const status = await subscriber(broker.url, statusTopic);
    await waitFor(() => status.messages[0], 'retained status');
    expect(status.messages[0]).toMatchObject({ payload: 'online', retain: true });
    await status.close();
    expect(agent.logs.some((l) => l.ns === 'link' && l.msg === 'connected')).toBe(true);
  });

  it('rides out a broker stop and start: backingOff and 503, then online and 200 again', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const linkStates: unknown[] = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d));
      if (m.type === 'actor' && m.actor.id === 'link') linkStates.push(m.actor.state);
    });
    await new Promise((resolve) => ws.once('open', resolve));

    await broker.stop();
    const down = await waitForHealth(base, 503);
    expect(down.body.reasons.join()).toMatch(/^link: (backingOff|session\.connecting)/);
    await waitFor(() => linkStates.includes('backingOff'), 'backingOff on /ws');

    await broker.resume();
    await waitForHealth(base, 200);
    await waitFor(() => linkStates.some((s) => JSON.stringify(s) === '{"session":"online"}'), 'online on /ws');
    ws.close();
    const status = await subscriber(broker.url, statusTopic);
    await waitFor(() => status.messages.find((m) => m.payload === 'online'), 'online again after the restart');
    await status.close();
  });

  it('exits 0 on SIGTERM within a few seconds, leaving a retained offline status', async () => {
    const status = await subscriber(broker.url, statusTopic);
    const started = Date.now();
    agent.child.kill('SIGTERM');
    const { code } = await agent.exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    await waitFor(() => status.messages.find((m) => m.payload === 'offline'), 'offline status');
    await status.close();
    expect(agent.logs.at(-1)).toMatchObject({ msg: 'stopped' });
  });
});

describe('agent process: last will', () => {
  it('on SIGKILL the broker publishes the retained offline will', async () => {
    const broker = { url: inject('mqttUrl') };
    const thingName = `will-${process.pid}`;
    const port = await freePort();
    const agent = runAgent({ config: { thingName, mqtt: { url: broker.url }, http: { port } } });
    await waitForHealth(`http://127.0.0.1:${port}`, 200);
    const status = await subscriber(broker.url, `devices/${thingName}/status`);
    await waitFor(() => status.messages.find((m) => m.payload === 'online'), 'online');
    agent.child.kill('SIGKILL');
    await agent.exited;
    await waitFor(() => status.messages.find((m) => m.payload === 'offline'), 'offline will');
    await status.close();
    const late = await subscriber(broker.url, `devices/${thingName}/status`);
    await waitFor(() => late.messages[0], 'retained will');
    expect(late.messages[0]).toMatchObject({ payload: 'offline', retain: true });
    await late.close();
  });
});

describe('agent process on embedded defaults', () => {
  it('starts its own broker with no config file, connects to it, and stops cleanly on SIGINT', async () => {
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const agent = runAgent({
      // anonymous clients allowed, so the test's watcher needs no user (it reads the status, which anyone may)
      env: { EDGEVISOR_MQTT__EMBEDDED_PORT: String(mqttPort), EDGEVISOR_HTTP__PORT: String(httpPort), EDGEVISOR_MQTT__EMBEDDED_ALLOW_ANONYMOUS: 'true' },
    });
    const healthy = await waitForHealth(`http://127.0.0.1:${httpPort}`, 200);
    expect(healthy.body.concerns.broker).toEqual({ state: 'listening', healthy: true });
    const status = await subscriber(`mqtt://127.0.0.1:${mqttPort}`, 'devices/edgevisor/status');
    await waitFor(() => status.messages[0], 'retained online on the embedded broker');
    expect(status.messages[0]).toMatchObject({ payload: 'online', retain: true });
    await status.close();
    agent.child.kill('SIGINT');
    expect((await agent.exited).code).toBe(0);
  });
});

describe('agent process: a second signal', () => {
  it('exits at once (code 1) while the first stop still waits for an open request', async () => {
    const { createConnection } = await import('node:net');
    const port = await freePort();
    const agent = runAgent({ config: { mqtt: { url: inject('mqttUrl') }, http: { port } } });
    await waitForHealth(`http://127.0.0.1:${port}`, 200);
    // a request whose body never finishes keeps the HTTP server from closing for a while
    const socket = createConnection({ host: '127.0.0.1', port });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"topic"');
    await new Promise((resolve) => setTimeout(resolve, 100));
    agent.child.kill('SIGTERM');
    await waitFor(() => agent.logs.find((l) => l.msg === 'stopping'), 'the first stop');
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(1);
    expect(agent.logs.some((l) => l.msg === 'second signal: exiting at once')).toBe(true);
    socket.destroy();
  });
});

describe('agent process: bad start-up', () => {
  it('a bad config exits 2 with one line naming the key', async () => {
    const agent = runAgent({ config: { mqtt: { url: 'ftp://x' } } });
    expect((await agent.exited).code).toBe(2);
    expect(agent.stderr()).toBe('edgevisor: config: mqtt.url: must be "embedded" or an mqtt://, mqtts://, ws:// or wss:// URL\n');
  });

  it('an unknown option exits 2 with one line', async () => {
    const agent = runAgent({ args: ['--colour'] });
    expect((await agent.exited).code).toBe(2);
    expect(agent.stderr()).toMatch(/^edgevisor: Unknown option '--colour'.*\(see --help\)\n$/);
  });

  it('an HTTP port in use exits 1 with one line naming the address', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const agent = runAgent({ config: { mqtt: { url: inject('mqttUrl') }, http: { port } } });
      expect((await agent.exited).code).toBe(1);
      expect(agent.stderr()).toBe(`edgevisor: http: cannot listen on 127.0.0.1:${port}: already in use: set http.port to a free port\n`);
    } finally {
      blocker.close();
    }
  });

  it('a broker that refuses the credentials: /health says why, and everything else keeps serving', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-passwd-'));
    execFileSync(requirePeer('mosquitto_passwd'), ['-b', '-c', join(dir, 'passwd'), 'agent', 'right']);
    const broker = await Mosquitto.start({ listener: ['allow_anonymous false', `password_file ${join(dir, 'passwd')}`] });
    const port = await freePort();
    const agent = runAgent({
      config: { mqtt: { url: broker.url, username: 'agent', password: 'wrong', reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.2 }, http: { port } },
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const down = await waitFor(async () => {
        const res = await fetch(`${base}/health`).catch(() => undefined);
        const body = res && (await json(res));
        return body?.reasons?.some((r: string) => /Not authorized/i.test(r)) ? { status: res!.status, body } : undefined;
      }, 'a Not authorized reason');
      expect(down.status).toBe(503);
      expect((await fetch(`${base}/api/v1/state`)).status).toBe(200);
      expect(agent.child.exitCode).toBeNull();
      expect(agent.stderr()).toBe('');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
      await broker.stop();
    }
  });

  it('--help lists every option and the environment variables', async () => {
    const agent = runAgent({ args: ['--help'] });
    expect((await agent.exited).code).toBe(0);
    const text = agent.stdout();
    for (const option of ['--config', '--print-config', '--inspect', '--help', '--version']) expect(text).toContain(option);
    expect(text).toContain('EDGEVISOR_MQTT__TLS__CERT');
    expect(text).toContain('EDGEVISOR_HTTP__TOKEN');
  });
});
