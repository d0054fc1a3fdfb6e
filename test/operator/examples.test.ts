import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { makePki } from '../support/certs.js';
import { Mosquitto } from '../support/mosquitto.js';
import { requirePeer } from '../support/peers.js';
import { freePort } from '../support/ports.js';
import { terminate } from '../support/processes.js';

const examples = join(import.meta.dirname, '../../deploy/examples');
const example = (name: string) => JSON.parse(readFileSync(join(examples, name), 'utf8'));

/** The example configs an operator starts from: valid, and working against a real broker where one runs here. */
describe('deploy/examples', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-examples-'));
  const pki = makePki();
  let broker: Mosquitto | undefined;
  let agent: AgentProcess | undefined;
  afterEach(async () => {
    await terminate(agent?.child);
    await broker?.stop();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(readdirSync(examples).filter((name) => name.endsWith('.json') && name !== 'aws-iot-policy.json'))('%s is a valid config', (name) => {
    // the certificate files it names exist on the box, not here: the test's stand in for them
    const config = example(name);
    const files: Record<string, string> = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
    for (const key of Object.keys(config.mqtt.tls ?? {})) config.mqtt.tls[key] = files[key];
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ ...config, $schema: undefined }));
    const loaded = loadConfig({ file, env: {} });
    expect(loaded.ok ? 'ok' : loaded.error).toBe('ok');
  });

  /** Runs the agent on an example whose broker is replaced by a loopback one; healthy means the link is online. */
  async function runOn(config: Record<string, any>, url: string) {
    const port = await freePort();
    agent = runAgent({ config: { ...config, stateDir: join(dir, config.thingName), mqtt: { ...config.mqtt, url }, http: { host: '127.0.0.1', port } } });
    return waitForHealth(`http://127.0.0.1:${port}`, 200, 20_000);
  }

  it('mosquitto-tls.json connects to a mosquitto with TLS and a password', async () => {
    const config = example('mosquitto-tls.json');
    const passwd = join(dir, 'passwd');
    execFileSync(requirePeer('mosquitto_passwd'), ['-b', '-c', passwd, config.mqtt.username, config.mqtt.password]);
    broker = await Mosquitto.start({
      listener: ['allow_anonymous false', `password_file ${passwd}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`],
    });
    config.mqtt.tls.ca = pki.ca;
    const healthy = await runOn(config, `mqtts://127.0.0.1:${broker.port}`);
    expect(healthy.body.concerns.link.state).toBe('session.online');
  });

  it('aws-iot-core.json connects with mutual TLS, as to AWS IoT Core (mosquitto requiring a client certificate)', async () => {
    const config = example('aws-iot-core.json');
    broker = await Mosquitto.start({
      listener: [
        'allow_anonymous true',
        `cafile ${pki.ca}`,
        `certfile ${pki.serverCert}`,
        `keyfile ${pki.serverKey}`,
        'require_certificate true',
        'use_identity_as_username true',
      ],
    });
    config.mqtt.tls = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey };
    config.jobs = { enabled: false };
    config.monitor = { enabled: false };
    const healthy = await runOn(config, `mqtts://127.0.0.1:${broker.port}`);
    expect(healthy.body.concerns.link.state).toBe('session.online');
  });
});
