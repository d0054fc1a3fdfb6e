import { createServer } from 'node:net';
import { Hono } from 'hono';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { embeddedBrokerActor } from '../../../src/actors/embedded-broker.js';
import { httpServerActor } from '../../../src/actors/http-server.js';
import { mqttClientActor } from '../../../src/actors/mqtt-client.js';
import { Closing } from '../../../src/closing.js';
import { ConfigSchema } from '../../../src/config/schema.js';
import { Slot } from '../../../src/slot.js';
import { createLogger } from '../../../src/log.js';
import { subscriber } from '../../support/mqtt.js';
import { freePort, waitFor } from '../../support/ports.js';
import { record } from '../../support/recorder.js';

const log = createLogger({ level: 'silent' });
const agent = { username: 'edgevisor-agent', password: 'a'.repeat(43) };
/** The broker's deps: thing "thing", anonymous clients allowed (they never get the agent's topics). */
const brokerDeps = (closing: Closing) => ({
  closing,
  log,
  config: ConfigSchema.parse({ thingName: 'thing', mqtt: { embeddedAllowAnonymous: true } }),
  credentials: () => agent,
});

async function occupy(port: number) {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return () => new Promise((resolve) => server.close(resolve));
}

describe('embedded broker actor (aedes)', () => {
  it('listens, brokers QoS 1 messages between real clients, and frees the port on stop', async () => {
    const closing = new Closing();
    const run = record(embeddedBrokerActor(brokerDeps(closing)), { name: 'embedded broker', host: '127.0.0.1', port: 0 });
    const listening = await waitFor(() => run.events.find((e) => e.type === 'server.listening'), 'listening');
    const url = `mqtt://127.0.0.1:${listening.port}`;
    const sub = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
    await sub.subscribeAsync('t/#', { qos: 1 });
    const got = new Promise<string>((resolve) => sub.on('message', (_t, p) => resolve(p.toString())));
    const pub = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
    await pub.publishAsync('t/1', 'hello', { qos: 1 });
    expect(await got).toBe('hello');
    await pub.endAsync();
    run.stop();
    await closing.settled();
    expect(sub.connected).toBe(false);
    await sub.endAsync(true);
    const release = await occupy(listening.port); // the port is free again
    await release();
  });

  it("carries the link's mqttClient: retained online status, and offline when it stops", async () => {
    const closing = new Closing();
    const broker = record(embeddedBrokerActor(brokerDeps(closing)), { name: 'embedded broker', host: '127.0.0.1', port: 0 });
    const { port } = await waitFor(() => broker.events.find((e) => e.type === 'server.listening'), 'listening');
    const url = `mqtt://127.0.0.1:${port}`;
    const client = record(
      mqttClientActor({
        url,
        options: { clientId: 'thing', reconnectPeriod: 0 },
        credentials: () => agent,
        statusTopic: 'devices/thing/status',
        session: new Slot(),
        closing,
        log,
      }),
      { attempt: 0 },
    );
    await waitFor(() => client.types().includes('mqtt.connected'), 'connected');
    const watcher = await subscriber(url, 'devices/thing/status');
    await waitFor(() => watcher.messages.find((m) => m.payload === 'online' && m.retain), 'retained online');
    client.stop();
    await waitFor(() => watcher.messages.find((m) => m.payload === 'offline'), 'offline');
    await watcher.close();
    broker.stop();
    await closing.settled();
  });

  it('reports a port in use as server.failed', async () => {
    const port = await freePort();
    const release = await occupy(port);
    const run = record(embeddedBrokerActor(brokerDeps(new Closing())), { name: 'embedded broker', host: '127.0.0.1', port });
    const failed = await waitFor(() => run.events.find((e) => e.type === 'server.failed'), 'failure');
    expect(failed.error.code).toBe('EADDRINUSE');
    run.stop();
    await release();
  });
});

describe('http server actor', () => {
  it('serves the app, reports the bound port, and closes on stop', async () => {
    const closing = new Closing();
    const app = new Hono().get('/', (c) => c.text('hi'));
    const run = record(httpServerActor({ fetch: app.fetch, closing, log }), { name: 'http', host: '127.0.0.1', port: 0 });
    const listening = await waitFor(() => run.events.find((e) => e.type === 'server.listening'), 'listening');
    expect(await (await fetch(`http://127.0.0.1:${listening.port}/`)).text()).toBe('hi');
    run.stop();
    await closing.settled();
    await expect(fetch(`http://127.0.0.1:${listening.port}/`)).rejects.toThrow();
  });

  it('reports a port in use as server.failed', async () => {
    const port = await freePort();
    const release = await occupy(port);
    const run = record(httpServerActor({ fetch: new Hono().fetch, closing: new Closing(), log }), { name: 'http', host: '127.0.0.1', port });
    const failed = await waitFor(() => run.events.find((e) => e.type === 'server.failed'), 'failure');
    expect(failed.error.code).toBe('EADDRINUSE');
    run.stop();
    await release();
  });
});
