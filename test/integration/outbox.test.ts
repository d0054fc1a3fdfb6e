import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startRuntime, type Runtime } from '../../src/runtime.js';
import { runAgent, runCli } from '../support/agent.js';
import { Mosquitto } from '../support/mosquitto.js';
import { analyse, persistentSubscriber } from '../support/persistent-subscriber.js';
import { freePort, waitFor } from '../support/ports.js';
import { canMount, mountTmpfs } from '../support/tmpfs.js';
import { json } from '../support/tree.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The whole runtime in this process, against a given broker. */
async function runtimeFor(brokerUrl: string, overrides: Record<string, string> = {}) {
  const httpPort = await freePort();
  const loaded = loadConfig({
    env: {
      EDGEVISOR_THING_NAME: `outbox-${process.pid}`,
      EDGEVISOR_STATE_DIR: mkdtempSync(join(tmpdir(), 'edgevisor-outbox-it-')),
      EDGEVISOR_MQTT__URL: brokerUrl,
      EDGEVISOR_MQTT__RECONNECT_MIN_SECONDS: '0.05',
      EDGEVISOR_MQTT__RECONNECT_MAX_SECONDS: '0.3',
      EDGEVISOR_HTTP__PORT: String(httpPort),
      ...overrides,
    },
  });
  if (!loaded.ok) throw new Error(loaded.error);
  const runtime = startRuntime(loaded.config, createLogger({ level: 'silent' }));
  cleanups.push(async () => (runtime.stop(), await runtime.done));
  await waitFor(() => runtime.outbox.current, 'the outbox to open');
  return { runtime, base: `http://127.0.0.1:${httpPort}` };
}

const enqueue = (runtime: Runtime, topic: string, n: number) =>
  runtime.outbox.current!.enqueue({ topic, payload: Buffer.from(JSON.stringify({ n })), qos: 1, retain: false });

describe('outbox against mosquitto', () => {
  it('delivers 10,000 messages through five broker restarts at random moments: all of them, in order per topic', async () => {
    const broker = await Mosquitto.start({ persistent: true });
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'outbox-it/#');
    cleanups.push(() => subscriber.close());
    const { runtime } = await runtimeFor(broker.url);

    const topics = ['outbox-it/a', 'outbox-it/b', 'outbox-it/c', 'outbox-it/d'];
    const total = 10_000;
    const outages: string[] = [];
    const acceptedWhileDown: number[] = [];
    let down = false;
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, k) => enqueue(runtime, topics[(i + k) % 4], i + k)));
        if (down) acceptedWhileDown[acceptedWhileDown.length - 1] += 100;
        await sleep(20);
      }
    })();
    // Five outages, at random moments, within the ~2.5 s the publishing takes.
    const chaos = (async () => {
      for (let round = 0; round < 5; round++) {
        const upMs = 100 + Math.floor(Math.random() * 200);
        const downMs = 50 + Math.floor(Math.random() * 200);
        outages.push(`up ${upMs} ms, down ${downMs} ms`);
        await sleep(upMs);
        await broker.stop();
        down = true;
        acceptedWhileDown.push(0);
        await sleep(downMs);
        await broker.resume();
        down = false;
      }
    })();
    await Promise.all([publishing, chaos]);
    expect(
      acceptedWhileDown.every((count) => count > 0),
      `messages accepted during each outage: ${acceptedWhileDown}`,
    ).toBe(true);

    await waitFor(() => analyse(subscriber.received).distinct === total || undefined, 'every message at the subscriber', 60_000);
    const { firstSeen, duplicates } = analyse(subscriber.received);
    for (const [index, topic] of topics.entries()) {
      const expected = Array.from({ length: total / 4 }, (_, j) => j * 4 + index);
      expect(firstSeen.get(topic), `order on ${topic} (${outages.join('; ')})`).toEqual(expected);
    }
    // QoS 1 allows duplicates (a PUBACK lost in an outage); the test counts them.
    console.log(`outbox: ${total} delivered through 5 outages (${outages.join('; ')}; accepted while down: ${acceptedWhileDown}), ${duplicates} duplicates`);
    // The last PUBACKs may trail the deliveries the subscriber already saw.
    await waitFor(() => runtime.outbox.current!.stats().depth === 0 || undefined, 'the outbox to empty');
    expect(runtime.outbox.current!.stats()).toMatchObject({ dropped: 0, enqueued: total, delivered: total });
  }, 120_000);

  it('full: drops the oldest, counts it on /health and /metrics, and delivers the rest once the broker is back', async () => {
    const broker = await Mosquitto.start({ persistent: true });
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'full-it/#');
    cleanups.push(() => subscriber.close());
    const { runtime, base } = await runtimeFor(broker.url, { EDGEVISOR_OUTBOX__MAX_MESSAGES: '10' });
    await waitFor(async () => (await fetch(`${base}/health`)).status === 200 || undefined, 'healthy');
    await broker.stop();
    for (let n = 0; n < 15; n++) await enqueue(runtime, 'full-it/x', n);

    const unhealthy = await waitFor(async () => {
      const res = await fetch(`${base}/health`);
      const body = await json(res);
      // counters reach the chart throttled: wait for the last of the five drops
      return body.concerns.outbox?.healthy === false && body.concerns.outbox.counters.dropped === 5 ? { status: res.status, body } : undefined;
    }, 'the outbox to report full');
    expect(unhealthy.status).toBe(503);
    expect(unhealthy.body.reasons).toContainEqual(expect.stringMatching(/^outbox: .*full: 10 messages, \d+ bytes; 5 dropped, 0 refused so far$/));
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/edgevisor_outbox_dropped_total 5\n/);

    await broker.resume();
    await waitFor(() => analyse(subscriber.received).distinct === 10 || undefined, 'the ten that were kept');
    expect(analyse(subscriber.received).firstSeen.get('full-it/x')).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const healthy = await waitFor(async () => {
      const body = await json(await fetch(`${base}/health`));
      return body.status === 'ok' ? body : undefined;
    }, 'healthy again');
    expect(healthy.concerns.outbox.counters).toMatchObject({ depth: 0, dropped: 5, delivered: 10 });
  });
});

describe('outbox across kill -9', () => {
  it('delivers every message accepted before the agent was killed, after a restart', async () => {
    const broker = await Mosquitto.start({ persistent: true });
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'kill-it/#');
    cleanups.push(() => subscriber.close());
    const port = await freePort();
    const config = { thingName: `kill-${process.pid}`, mqtt: { url: broker.url, reconnectMinSeconds: 0.05, reconnectMaxSeconds: 0.3 }, http: { port } };
    const first = runAgent({ config });
    cleanups.push(() => first.child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200 || undefined, 'healthy');

    // Half goes out at once; then the broker goes away and the rest piles up in the outbox.
    const accepted: number[] = [];
    let n = 0;
    const post = async () => {
      const mine = n++;
      const res = await fetch(`${base}/api/v1/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ topic: 'kill-it/x', payload: JSON.stringify({ n: mine }) }),
      });
      if (res.status === 202) accepted.push(mine);
    };
    const flow = (async () => {
      try {
        for (;;) await Promise.all([post(), post(), post(), post()]);
      } catch {
        // the agent died under us: requests in flight were never accepted
      }
    })();
    await waitFor(() => accepted.length >= 300 || undefined, '300 accepted');
    await broker.stop();
    await waitFor(() => accepted.length >= 800 || undefined, '800 accepted');
    first.child.kill('SIGKILL');
    await first.exited;
    await flow;
    await broker.resume();

    const second = runAgent({ config, stateDir: first.stateDir });
    cleanups.push(async () => (second.child.kill('SIGTERM'), await second.exited));
    await waitFor(
      () => {
        const seen = new Set(subscriber.received.map((m) => JSON.parse(m.payload).n as number));
        return accepted.every((a) => seen.has(a)) || undefined;
      },
      `all ${accepted.length} accepted messages after the restart`,
      30_000,
    );
    const recovered = second.logs.find((l) => l.msg === 'outbox recovered');
    expect(recovered?.recovered).toBeGreaterThan(0);
  }, 60_000);
});

describe('edgevisor publish', () => {
  it('sends text and binary (stdin) messages through the running agent, and says why when it cannot', async () => {
    const url = inject('mqttUrl');
    const subscriber = await persistentSubscriber(url, `cli-${process.pid}/#`);
    cleanups.push(() => subscriber.close());
    const port = await freePort();
    const agent = runAgent({ config: { thingName: `cli-${process.pid}`, mqtt: { url }, http: { port } } });
    cleanups.push(async () => (agent.child.kill('SIGTERM'), await agent.exited));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200 || undefined, 'healthy');

    const text = runCli(['publish', '--config', agent.configFile!, '-t', `cli-${process.pid}/text`, '-m', 'hello', '--retain']);
    expect(text.code).toBe(0);
    expect(JSON.parse(text.stdout)).toMatchObject({ accepted: true });
    const binary = runCli(['publish', '--config', agent.configFile!, '-t', `cli-${process.pid}/bin`, '-f', '-', '-q', '0'], {
      input: Buffer.from([0, 1, 254, 255]),
    });
    expect(binary.code).toBe(0);
    await waitFor(() => subscriber.received.length >= 2 || undefined, 'both messages');
    expect(subscriber.received.find((m) => m.topic.endsWith('/text'))?.payload).toBe('hello');
    expect(subscriber.received.some((m) => m.topic.endsWith('/bin'))).toBe(true);

    const wildcard = runCli(['publish', '--config', agent.configFile!, '-t', 'a/#', '-m', 'x']);
    expect(wildcard.code).toBe(1);
    expect(wildcard.stderr).toBe('edgevisor: publish refused (400): topic: must not contain the wildcards + or # (it is a topic to publish to)\n');
    const dollar = runCli(['publish', '--config', agent.configFile!, '-t', '$SYS/broker/x', '-m', 'x']);
    expect(dollar.code).toBe(1);
    expect(dollar.stderr).toBe(
      'edgevisor: publish refused (400): topic: must not start with "$": such topics are the broker\'s own (outbox.allowDollarTopics)\n',
    );
    const noTopic = runCli(['publish', '--config', agent.configFile!, '-m', 'x']);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toBe('edgevisor: publish needs --topic (see --help)\n');
  });

  it('names the address when no agent is running', async () => {
    const port = await freePort();
    const result = runCli(['publish', '-t', 'a', '-m', 'x'], { env: { EDGEVISOR_HTTP__PORT: String(port) } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`edgevisor: cannot reach the agent at http://127.0.0.1:${port}/api/v1/publish: ECONNREFUSED\n`);
  });
});

describe('a message the broker answers by disconnecting', () => {
  it('is moved to the dead letters after three disconnects in a row; the rest flows, and it can be listed, retried and dropped', async () => {
    // mosquitto ends the connection (protocol error) on a topic of more than 200 levels; the
    // agent is configured to let such a topic in, as an older agent would have queued it.
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'poison-it/#');
    cleanups.push(() => subscriber.close());
    const { runtime, base } = await runtimeFor(broker.url, { EDGEVISOR_OUTBOX__MAX_TOPIC_LEVELS: '1000', EDGEVISOR_OUTBOX__MAX_TOPIC_BYTES: '4096' });
    await waitFor(async () => (await fetch(`${base}/health`)).status === 200 || undefined, 'healthy');
    await fetch(`${base}/api/v1/outbox/pause`, { method: 'POST' });
    const poison = `poison-it/${'a/'.repeat(250)}end`;
    await enqueue(runtime, 'poison-it/good', 1);
    await runtime.outbox.current!.enqueue({ topic: poison, payload: Buffer.from('{"n":2}'), qos: 1, retain: false });
    await enqueue(runtime, 'poison-it/good', 3);
    await enqueue(runtime, 'poison-it/good', 4);
    await fetch(`${base}/api/v1/outbox/resume`, { method: 'POST' });

    await waitFor(
      () => analyse(subscriber.received).firstSeen.get('poison-it/good')?.length === 3 || undefined,
      'the good messages past the poison one',
      20_000,
    );
    expect(analyse(subscriber.received).firstSeen.get('poison-it/good')).toEqual([1, 3, 4]);
    const list = await json(await fetch(`${base}/api/v1/outbox/dead-letters`));
    expect(list.count).toBe(1);
    expect(list.deadLetters[0]).toMatchObject({
      topic: poison,
      qos: 1,
      payloadBytes: 7,
      reason: 'the connection ended within 5 s of sending it, 3 times in a row',
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/edgevisor_outbox_dead_letters 1\n/);
    expect(metrics).toMatch(/edgevisor_outbox_dead_lettered_total 1\n/);
    const state = await waitFor(async () => {
      const body = await json(await fetch(`${base}/api/v1/state`));
      const outbox = body.tree.children.find((c: { id: string }) => c.id === 'outbox');
      // counters reach the chart throttled, and the last PUBACKs may trail the deliveries
      return outbox?.context.counters.deadLetters === 1 && outbox.context.counters.depth === 0 ? outbox : undefined;
    }, 'the dead letter counted in /api/v1/state');
    expect(state.context.counters).toMatchObject({ deadLettered: 1, depth: 0 });

    // A retry sends it again (and it comes back); a drop removes it for good.
    const id = list.deadLetters[0].id as string;
    expect((await fetch(`${base}/api/v1/outbox/dead-letters/${id}/retry`, { method: 'POST' })).status).toBe(202);
    const back = await waitFor(
      async () => {
        const again = await json(await fetch(`${base}/api/v1/outbox/dead-letters`));
        return again.count === 1 ? again.deadLetters[0] : undefined;
      },
      'the retried message moved aside again',
      20_000,
    );
    expect(back.id).not.toBe(id);
    expect(await json(await fetch(`${base}/api/v1/outbox/dead-letters/${back.id}`, { method: 'DELETE' }))).toEqual({ dropped: true });
    expect((await json(await fetch(`${base}/api/v1/outbox/dead-letters`))).count).toBe(0);
    await enqueue(runtime, 'poison-it/good', 5);
    await waitFor(() => analyse(subscriber.received).firstSeen.get('poison-it/good')?.includes(5) || undefined, 'the link still up and delivering');
  }, 60_000);
});

describe.skipIf(!canMount)('outbox on a disk that fills up (a real 2 MiB tmpfs as the state directory)', () => {
  it('refuses new messages with 507 and says why on /health, without crashing; takes them again once space returns; loses nothing it accepted', async () => {
    const broker = await Mosquitto.start({ persistent: true });
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'disk-it/#');
    cleanups.push(() => subscriber.close());
    const fs = mountTmpfs('2m');
    cleanups.push(fs.unmount);
    const stateDir = `${fs.dir}/state`;
    mkdirSync(stateDir);
    const { base } = await runtimeFor(broker.url, { EDGEVISOR_STATE_DIR: stateDir, EDGEVISOR_OUTBOX__STORAGE_PROBE_SECONDS: '0.2' });
    await waitFor(async () => (await fetch(`${base}/health`)).status === 200 || undefined, 'healthy');
    await broker.stop();
    writeFileSync(`${fs.dir}/ballast`, Buffer.alloc(1536 * 1024));

    const accepted: number[] = [];
    const publish = (n: number) =>
      fetch(`${base}/api/v1/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ topic: 'disk-it/x', payload: JSON.stringify({ n, pad: 'p'.repeat(20_000) }) }),
      });
    let refused: { status: number; body: { error: string; message: string } } | undefined;
    for (let n = 0; n < 100 && !refused; n++) {
      const res = await publish(n);
      if (res.status === 202) accepted.push(n);
      else refused = { status: res.status, body: await json(res) };
    }
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused?.status).toBe(507);
    expect(refused?.body.error).toBe('insufficient_storage');
    const sick = await waitFor(async () => {
      const res = await fetch(`${base}/health`);
      const body = await json(res);
      return body.concerns.outbox?.state.includes('capacity.unwritable') ? { status: res.status, body } : undefined;
    }, 'the outbox to show the disk on /health');
    expect(sick.status).toBe(503);
    expect(sick.body.reasons).toContainEqual(
      expect.stringMatching(new RegExp(`^outbox: .*refusing new messages, delivering the ${accepted.length} it holds: disk_full: `)),
    );

    rmSync(`${fs.dir}/ballast`);
    await waitFor(async () => (await json(await fetch(`${base}/api/v1/outbox`))).unwritable === null || undefined, 'the disk taken back into use');
    const after = await publish(1000);
    expect(after.status).toBe(202);
    accepted.push(1000);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/edgevisor_concern_restarts\{concern="outbox"\} 0\n/); // a state, not a crash loop

    await broker.resume();
    await waitFor(
      () => analyse(subscriber.received).firstSeen.get('disk-it/x')?.length === accepted.length || undefined,
      'every accepted message delivered',
      30_000,
    );
    expect(analyse(subscriber.received).firstSeen.get('disk-it/x')).toEqual(accepted);
    await waitFor(async () => (await fetch(`${base}/health`)).status === 200 || undefined, 'healthy again');
  }, 60_000);
});
