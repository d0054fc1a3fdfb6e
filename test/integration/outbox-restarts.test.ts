import { afterEach, describe, expect, it } from 'vitest';
import { runAgent, type AgentProcess } from '../support/agent.js';
import { Mosquitto } from '../support/mosquitto.js';
import { persistentSubscriber } from '../support/persistent-subscriber.js';
import { freePort, waitFor } from '../support/ports.js';
import { terminate } from '../support/processes.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Stop = 'SIGKILL' | 'SIGTERM' | 'SIGKILL during replay';

describe('outbox across many restarts with the broker down', () => {
  it('delivers every accepted message, exactly as accepted and in order, after five restarts in a row (kill -9, SIGTERM, a kill during replay)', async () => {
    const broker = await Mosquitto.start({ persistent: true });
    cleanups.push(() => broker.stop());
    const subscriber = await persistentSubscriber(broker.url, 'restarts-it/#');
    cleanups.push(() => subscriber.close());
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const config = { thingName: `restarts-${process.pid}`, mqtt: { url: broker.url, reconnectMinSeconds: 0.05, reconnectMaxSeconds: 0.3 }, http: { port } };
    let agent = start(runAgent({ config }));
    const stateDir = agent.stateDir;

    // What the agent accepted (202), per topic in order; payloads carry multi-byte text.
    const accepted = new Map<string, string[]>();
    let n = 0;
    const publishSome = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const topic = `restarts-it/${n % 3}`;
        const payload = JSON.stringify({ n: n++, text: 'température 21,5 °C ✓', pad: 'x'.repeat(n % 500) });
        const res = await fetch(`${base}/api/v1/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ topic, payload }),
        });
        expect(res.status).toBe(202);
        accepted.set(topic, [...(accepted.get(topic) ?? []), payload]);
      }
    };

    // Some go out while the broker is there (ACK records in the log), then the backlog builds.
    await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200 || undefined, 'healthy');
    await publishSome(60);
    await waitFor(() => subscriber.received.length >= 60 || undefined, 'the first 60 delivered');
    await waitFor(async () => (await outboxStats(base))?.depth === 0 || undefined, 'their PUBACKs');
    await broker.stop();
    await publishSome(500);

    const stops: Stop[] = ['SIGKILL', 'SIGTERM', 'SIGKILL during replay', 'SIGTERM', 'SIGKILL'];
    const replayKills: string[] = [];
    for (const [round, stop] of stops.entries()) {
      if (stop === 'SIGKILL during replay') {
        // Killed as soon as it says it started: the outbox opens and replays after that line.
        await waitFor(() => agent.logs.some((l) => l.msg === 'started') || undefined, 'the start line', 20_000);
        agent.child.kill('SIGKILL');
        await agent.exited;
        replayKills.push(agent.logs.some((l) => l.msg === 'outbox recovered') ? 'after the replay' : 'before the replay finished');
      } else {
        const stats = await waitFor(() => outboxStats(base), `the outbox open after restart ${round}`, 20_000);
        expect(stats.depth, `backlog after restart ${round}`).toBe(n - 60);
        await publishSome(20);
        if (stop === 'SIGKILL') agent.child.kill('SIGKILL');
        else await terminate(agent.child);
        await agent.exited;
      }
      agent = start(runAgent({ config, stateDir }));
    }

    await broker.resume();
    await waitFor(
      () => {
        const seen = new Set(subscriber.received.map((m) => `${m.topic}|${m.payload}`));
        return [...accepted].every(([topic, payloads]) => payloads.every((p) => seen.has(`${topic}|${p}`))) || undefined;
      },
      `all ${n} accepted messages delivered`,
      60_000,
    );
    for (const [topic, payloads] of accepted) {
      const firsts: string[] = [];
      for (const m of subscriber.received) if (m.topic === topic && !firsts.includes(m.payload)) firsts.push(m.payload);
      expect(firsts, `order and content on ${topic}`).toEqual(payloads);
    }
    console.log(
      `outbox restarts: ${n} accepted, 5 restarts (${stops.join(', ')}; the replay kill landed ${replayKills.join(', ')}), ${subscriber.received.length - n} duplicates`,
    );
  }, 180_000);
});

function start(agent: AgentProcess): AgentProcess {
  cleanups.push(() => agent.child.kill('SIGKILL'));
  return agent;
}

async function outboxStats(base: string): Promise<{ depth: number } | undefined> {
  const res = await fetch(`${base}/api/v1/outbox`).catch(() => undefined);
  return res?.status === 200 ? ((await res.json()) as { depth: number }) : undefined;
}
