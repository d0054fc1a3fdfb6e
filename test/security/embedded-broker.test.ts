import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalJobsService } from '../../scripts/jobs-service.js';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { makePki } from '../support/certs.js';
import { peakGrowthMiB, publishPacket, publishQos1Packet, rawClient, subscribePacket, varint } from '../support/mqtt-raw.js';
import { freePort, waitFor } from '../support/ports.js';

/**
 * The attacks of issue 12 ("the embedded broker is an open door"), each repeated against the
 * built agent on its embedded broker with real MQTT clients. RSS figures are printed.
 */

const LOCAL = { username: 'local-app', password: 'local-app-password' };
const SERVICE = { username: 'jobs-service', password: 'jobs-service-password' };
const MiB = 1024 * 1024;

interface Box {
  agent: AgentProcess;
  thingName: string;
  mqttPort: number;
  url: string;
  base: string;
  marks: string;
}

/** An agent on the embedded broker with jobs on, a password file with a local app and a jobs service. */
async function startBox(): Promise<Box> {
  const root = mkdtempSync(join(tmpdir(), 'edgevisor-security-'));
  const [jobs, marks] = [join(root, 'jobs'), join(root, 'marks')];
  mkdirSync(jobs);
  mkdirSync(marks);
  writeFileSync(join(jobs, 'mark.sh'), `#!/bin/sh\necho ran >> "${marks}/$1"\n`);
  chmodSync(join(jobs, 'mark.sh'), 0o755);
  const passwords = join(root, 'passwd');
  execFileSync('mosquitto_passwd', ['-c', '-b', passwords, LOCAL.username, LOCAL.password]);
  execFileSync('mosquitto_passwd', ['-b', passwords, SERVICE.username, SERVICE.password]);
  const thingName = `sec-${process.pid}`;
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const agent = runAgent({
    config: {
      thingName,
      mqtt: { url: 'embedded', embeddedPort: mqttPort, embeddedPasswordFile: passwords, embeddedJobsServiceUser: SERVICE.username },
      http: { port: httpPort },
      jobs: { enabled: true, allowlist: [`${jobs}/`], answerTimeoutSeconds: 1 },
    },
  });
  const base = `http://127.0.0.1:${httpPort}`;
  // generous: the agent starts as a process, on a box that may be busy
  await waitForHealth(base, 200, 30_000);
  await waitFor(async () => (await linkOnline(base)) || undefined, 'link online', 30_000);
  return { agent, thingName, mqttPort, url: `mqtt://127.0.0.1:${mqttPort}`, base, marks };
}

/** The agent's own MQTT connection is up, by its /health. */
async function linkOnline(base: string): Promise<boolean> {
  const res = await fetch(`${base}/health`).catch(() => undefined);
  const body = (await res?.json().catch(() => undefined)) as { concerns?: { link?: { healthy?: boolean } } } | undefined;
  return body?.concerns?.link?.healthy === true;
}

/** One connection attempt: the client, or the CONNACK refusal code (or the error). */
async function tryConnect(url: string, options: IClientOptions): Promise<{ client?: MqttClient; refused?: number | string }> {
  try {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    return { client };
  } catch (error) {
    const code = (error as { code?: number | string }).code;
    return { refused: code ?? String(error) };
  }
}

const agentLostLink = (agent: AgentProcess) => agent.logs.some((l) => l.ns === 'link' && l.msg === 'connection closed');

let box: Box;
beforeAll(async () => {
  box = await startBox();
});
afterAll(async () => {
  box?.agent.child.kill('SIGKILL');
  await box?.agent.exited;
});

describe('embedded broker: who may connect', () => {
  it('refuses anonymous clients and bad passwords; takes a user of the password file', async () => {
    const anonymous = await tryConnect(box.url, { clientId: 'anon' });
    anonymous.client?.end(true);
    expect(anonymous.refused).toBe(5);
    const wrong = await tryConnect(box.url, { clientId: 'wrong', username: LOCAL.username, password: 'guess' });
    wrong.client?.end(true);
    expect(wrong.refused).toBe(4);
    const local = await tryConnect(box.url, { clientId: 'local', ...LOCAL });
    expect(local.refused).toBeUndefined();
    await local.client!.endAsync();
  });

  it("keeps its own generated credentials in the state directory, readable by the agent's user only", () => {
    const file = join(box.agent.stateDir, 'embedded-broker-credentials.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(stored.password.length).toBeGreaterThanOrEqual(32);
  });
});

describe('embedded broker: a fake Jobs service', () => {
  it('never makes the agent run anything, anonymous or as a local user; the named jobs service still can', async () => {
    const job = (mark: string) => ({
      version: '1.0',
      steps: [{ action: { name: mark, type: 'runCommand', input: { command: join(box.marks, '..', 'jobs', 'mark.sh'), args: [mark] } } }],
    });
    const at = (who?: { username: string; password: string }) => `mqtt://${who ? `${who.username}:${who.password}@` : ''}127.0.0.1:${box.mqttPort}`;
    // anonymous (refused at the door), then a local user (may neither listen nor answer on the
    // agent's $aws topics): each offers a job, as a fake Jobs service would
    const fakes: LocalJobsService[] = [];
    for (const [who, mark] of [
      [undefined, 'evil-anonymous'],
      [LOCAL, 'evil-local-user'],
    ] as const) {
      const fake = await LocalJobsService.start(at(who)).catch(() => undefined);
      if (fake) fakes.push(fake);
      fake?.createJob(box.thingName, mark, job(mark));
    }
    // the operator's jobs service (embeddedJobsServiceUser) offers a harmless job: once it has
    // run, the agent has taken and finished the work it was offered
    const service = await LocalJobsService.start(at(SERVICE));
    try {
      service.createJob(box.thingName, 'legit', job('legit'));
      // the first job to run, whichever: only the legitimate one may
      const first = await waitFor(() => readdirSync(box.marks)[0], 'a job to run', 20_000);
      expect(first).toBe('legit');
      await waitFor(() => service.execution(box.thingName, 'legit')?.status === 'SUCCEEDED' || undefined, 'legit reported');
      expect(readdirSync(box.marks)).toEqual(['legit']);
    } finally {
      await service.stop();
      for (const fake of fakes) await fake.stop().catch(() => {});
    }
  });
});

describe("embedded broker: the agent's client id", () => {
  it('refuses a client that takes it (anonymous, local user, wrong agent password), and the agent stays online', async () => {
    const status = await mqtt.connectAsync(box.url, { clientId: 'status-watch', ...LOCAL });
    const seen: string[] = [];
    status.on('message', (_t, payload) => seen.push(payload.toString()));
    await status.subscribeAsync(`devices/${box.thingName}/status`, { qos: 1 });
    const attempts = [{}, LOCAL, { username: 'edgevisor-agent', password: 'x'.repeat(43) }];
    for (const credentials of attempts) {
      const attempt = await tryConnect(box.url, { clientId: box.thingName, ...credentials });
      attempt.client?.end(true);
      expect(attempt.refused, JSON.stringify(credentials)).toBeDefined();
    }
    // a round trip through the agent's own connection: published by it, seen by the local app
    await status.subscribeAsync('probe/after-takeover', { qos: 1 });
    const probe = new Promise<void>((resolve) => status.on('message', (topic) => topic === 'probe/after-takeover' && resolve()));
    const res = await fetch(`${box.base}/api/v1/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ topic: 'probe/after-takeover', payload: 'x', qos: 1 }),
    });
    expect(res.status).toBe(202);
    await probe;
    await status.endAsync();
    expect(seen).not.toContain('offline');
    expect(agentLostLink(box.agent)).toBe(false);
  });
});

describe('embedded broker: bounded inputs', () => {
  it('closes a 100 MB packet before reading it (RSS growth under 50 MiB)', async () => {
    const growth = await peakGrowthMiB(box.agent.child.pid!, async () => {
      const client = rawClient(box.mqttPort);
      const size = 100 * MiB;
      // a CONNECT packet needs no credentials to be sent: the door must hold before them
      await client.write(Buffer.concat([Buffer.from([0x10]), varint(size)]));
      const chunk = Buffer.alloc(MiB);
      for (let sent = 0; sent < size; sent += chunk.length) if (!(await client.write(chunk))) break;
      await Promise.race([client.closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
      client.socket.destroy();
    });
    console.log(`100 MB packet: agent RSS growth ${growth.toFixed(1)} MiB`);
    expect(growth).toBeLessThan(50);
    expect(await linkOnline(box.base)).toBe(true);
  });

  it('bounds 100,000 retained messages (RSS growth under 50 MiB)', async () => {
    const payload = Buffer.alloc(1024, 'r');
    let written = 0;
    const growth = await peakGrowthMiB(box.agent.child.pid!, async () => {
      const client = rawClient(box.mqttPort, { clientId: 'retain-flood', ...LOCAL });
      expect(await client.connack).toBe(0);
      for (let i = 0; i < 100_000; i += 500) {
        const batch = Buffer.concat(Array.from({ length: 500 }, (_, j) => publishPacket(`flood/${i + j}`, payload, true)));
        if (!(await client.write(batch))) break;
        written += 500;
      }
      await client.ping(); // every publish before it has been handled (or the client is gone)
      client.socket.destroy();
    });
    console.log(`100,000 retained messages (${written} written before the broker closed): agent RSS growth ${growth.toFixed(1)} MiB`);
    expect(growth).toBeLessThan(50);
    expect(await linkOnline(box.base)).toBe(true);
  });

  it('bounds a flood of connections, and the agent keeps its own', async () => {
    const clients = Array.from({ length: 300 }, (_, i) => rawClient(box.mqttPort, { clientId: `flood-${i}`, ...LOCAL }));
    const codes = await Promise.all(clients.map((c) => c.connack));
    const accepted = codes.filter((c) => c === 0).length;
    console.log(`connection flood: ${accepted} of 300 accepted`);
    expect(accepted).toBeLessThanOrEqual(99);
    expect(await linkOnline(box.base)).toBe(true);
    for (const c of clients) c.socket.destroy();
    expect(agentLostLink(box.agent)).toBe(false);
  });
});

describe('embedded broker over TLS, and the agent credentials across a restart', () => {
  it('the agent and local users connect over TLS only; the agent reuses its credentials after a restart', { timeout: 90_000 }, async () => {
    const pki = makePki();
    const root = mkdtempSync(join(tmpdir(), 'edgevisor-security-tls-'));
    const passwords = join(root, 'passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', passwords, LOCAL.username, LOCAL.password]);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const config = {
      thingName: `tls-${process.pid}`,
      mqtt: { url: 'embedded', embeddedPort: mqttPort, embeddedPasswordFile: passwords, embeddedTls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } },
      http: { port: httpPort },
    };
    const base = `http://127.0.0.1:${httpPort}`;
    const first = runAgent({ config });
    try {
      await waitFor(async () => (await linkOnline(base)) || undefined, 'the agent online over TLS', 30_000).catch((error) => {
        throw new Error(`${error.message}; agent logs: ${first.stdout().slice(-3000)} ${first.stderr()}`);
      });
      const secure = await tryConnect(`mqtts://127.0.0.1:${mqttPort}`, { clientId: 'tls-app', ca: readFileSync(pki.ca), ...LOCAL });
      expect(secure.refused).toBeUndefined();
      await secure.client!.endAsync();
      // plain MQTT is no TLS handshake: the connection ends without a CONNACK
      expect(await rawClient(mqttPort, { clientId: 'plain-app', ...LOCAL }).connack).toBe('closed');
    } finally {
      first.child.kill('SIGTERM');
    }
    expect((await first.exited).code).toBe(0);
    const file = join(first.stateDir, 'embedded-broker-credentials.json');
    const before = readFileSync(file, 'utf8');
    const second = runAgent({ config, stateDir: first.stateDir });
    try {
      await waitFor(async () => (await linkOnline(base)) || undefined, 'the agent online again', 30_000);
      expect(readFileSync(file, 'utf8')).toBe(before);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });
});

describe('embedded broker: a subscriber that never acknowledges', () => {
  it('gets at most maxInflight unacknowledged messages (RSS growth under 50 MiB), and the agent keeps working', async () => {
    const payload = Buffer.alloc(512, 'q');
    const sink = rawClient(box.mqttPort, { clientId: 'never-acks', ...LOCAL });
    expect(await sink.connack).toBe(0);
    await sink.write(subscribePacket('slow/#', 1));
    await sink.ping(); // subscribed
    const source = rawClient(box.mqttPort, { clientId: 'fast-source', ...LOCAL });
    expect(await source.connack).toBe(0);
    const attack = async () => {
      for (let i = 0; i < 100_000; i += 500) {
        const batch = Buffer.concat(Array.from({ length: 500 }, (_, j) => publishQos1Packet('slow/x', payload, ((i + j) % 65535) + 1)));
        if (!(await source.write(batch))) break;
      }
      await source.ping();
      await sink.ping();
    };
    // without a bound the broker slows down as its unacknowledged store grows: measure after 15 s at most
    const growth = await peakGrowthMiB(box.agent.child.pid!, () => Promise.race([attack(), new Promise((resolve) => setTimeout(resolve, 15_000))]));
    source.socket.destroy();
    console.log(`100,000 QoS 1 messages to a subscriber that never acknowledges (${sink.deliveries()} delivered): agent RSS growth ${growth.toFixed(1)} MiB`);
    sink.socket.destroy();
    expect(sink.deliveries()).toBeLessThanOrEqual(100); // embeddedLimits.maxInflight
    expect(growth).toBeLessThan(50);
    expect(await linkOnline(box.base)).toBe(true);
  });
});
