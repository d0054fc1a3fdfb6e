import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { mqttClientActor } from '../../../src/actors/mqtt-client.js';
import { Closing } from '../../../src/closing.js';
import { Slot } from '../../../src/slot.js';
import { loadConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { brokerUrl, mqttOptions, statusTopic } from '../../../src/mqtt/options.js';
import { makePki } from '../../support/certs.js';
import { Mosquitto } from '../../support/mosquitto.js';
import { subscriber } from '../../support/mqtt.js';
import { waitFor } from '../../support/ports.js';
import { record } from '../../support/recorder.js';
import { requirePeer } from '../../support/peers.js';

const log = createLogger({ level: 'silent' });

/** The actor exactly as the runtime builds it, from a config. */
function clientFor(config: Record<string, unknown>, closing = new Closing()) {
  const loaded = loadConfig({ env: Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)])) });
  if (!loaded.ok) throw new Error(loaded.error);
  const c = loaded.config;
  return mqttClientActor({ url: brokerUrl(c), options: mqttOptions(c), statusTopic: statusTopic(c.thingName), session: new Slot(), closing, log });
}

describe('mqttClient actor against mosquitto', () => {
  const broker = { url: inject('mqttUrl') };

  it('connects, publishes a retained online status, and on stop a retained offline, then ends', async () => {
    const closing = new Closing();
    const thing = 'thing-a';
    const watcher = await subscriber(broker.url, `devices/${thing}/status`);
    const run = record(clientFor({ EDGEVISOR_MQTT__URL: broker.url, EDGEVISOR_THING_NAME: thing }, closing), { attempt: 0 });
    await waitFor(() => run.types().includes('mqtt.connected'), 'connected');
    await waitFor(() => watcher.messages.some((m) => m.payload === 'online'), 'online status');
    run.stop();
    expect(closing.size).toBe(1);
    await closing.settled();
    await waitFor(() => watcher.messages.at(-1)?.payload === 'offline', 'offline status');
    await watcher.close();
    // both are retained: a late subscriber sees the last one
    const late = await subscriber(broker.url, `devices/${thing}/status`);
    await waitFor(() => late.messages.length > 0, 'retained status');
    expect(late.messages[0]).toMatchObject({ payload: 'offline', retain: true });
    await late.close();
    expect(run.types()).not.toContain('mqtt.closed'); // a stop is not a failure
  });

  it('reports mqtt.closed with the cause when the broker goes away', async () => {
    const own = await Mosquitto.start();
    try {
      const run = record(clientFor({ EDGEVISOR_MQTT__URL: own.url }), { attempt: 0 });
      await waitFor(() => run.types().includes('mqtt.connected'), 'connected');
      await own.stop();
      await waitFor(() => run.types().includes('mqtt.closed'), 'closed');
      run.stop();
      const refused = record(clientFor({ EDGEVISOR_MQTT__URL: own.url }), { attempt: 1 });
      await waitFor(() => refused.events.find((e) => e.type === 'mqtt.closed'), 'refused');
      expect(refused.events.find((e) => e.type === 'mqtt.closed')?.error).toMatchObject({ code: 'ECONNREFUSED' });
      refused.stop();
    } finally {
      await own.stop();
    }
  });
});

describe('mqttClient actor: credentials and mutual TLS (AWS IoT Core style)', () => {
  it('logs in with username and password, and reports a refusal as "Not authorized"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-passwd-'));
    execFileSync(requirePeer('mosquitto_passwd'), ['-b', '-c', join(dir, 'passwd'), 'agent', 's3cret']);
    const broker = await Mosquitto.start({ listener: ['allow_anonymous false', `password_file ${join(dir, 'passwd')}`] });
    try {
      const good = record(clientFor({ EDGEVISOR_MQTT__URL: broker.url, EDGEVISOR_MQTT__USERNAME: 'agent', EDGEVISOR_MQTT__PASSWORD: 's3cret' }), {
        attempt: 0,
      });
      await waitFor(() => good.types().includes('mqtt.connected'), 'connected with credentials');
      good.stop();
      const bad = record(clientFor({ EDGEVISOR_MQTT__URL: broker.url, EDGEVISOR_MQTT__USERNAME: 'agent', EDGEVISOR_MQTT__PASSWORD: 'wrong' }), { attempt: 0 });
      const closed = await waitFor(() => bad.events.find((e) => e.type === 'mqtt.closed'), 'refusal');
      expect(closed.error).toMatchObject({ code: 'connack_5' });
      expect(closed.error.message).toMatch(/Not authorized/i);
      bad.stop();
    } finally {
      await broker.stop();
    }
  });

  it('connects over mqtts:// with a CA, a client certificate and key; without the certificate it is refused', async () => {
    const pki = makePki();
    const broker = await Mosquitto.start({
      listener: ['allow_anonymous true', `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true'],
    });
    const url = `mqtts://127.0.0.1:${broker.port}`;
    try {
      const tls = record(
        clientFor({
          EDGEVISOR_MQTT__URL: url,
          EDGEVISOR_MQTT__TLS__CA: pki.ca,
          EDGEVISOR_MQTT__TLS__CERT: pki.clientCert,
          EDGEVISOR_MQTT__TLS__KEY: pki.clientKey,
        }),
        { attempt: 0 },
      );
      await waitFor(() => tls.types().includes('mqtt.connected'), 'mTLS connection');
      tls.stop();
      const noCert = record(clientFor({ EDGEVISOR_MQTT__URL: url, EDGEVISOR_MQTT__TLS__CA: pki.ca }), { attempt: 0 });
      await waitFor(() => noCert.types().includes('mqtt.closed'), 'refusal without a client certificate');
      expect(noCert.types()).not.toContain('mqtt.connected');
      noCert.stop();
    } finally {
      await broker.stop();
    }
  });
});
