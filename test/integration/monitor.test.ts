import { cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { Mosquitto } from '../support/mosquitto.js';
import { subscriber } from '../support/mqtt.js';
import { freePort, waitFor } from '../support/ports.js';
import { json } from '../support/tree.js';

/** Sample times of the simulated peers: recent, so retention keeps them. */
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const sample = (ts: number, values: Record<string, number>) => JSON.stringify({ schema: 1, ts, values });

/** Publishers that each send `count` samples at QoS 1 (every PUBACK awaited), spread over time. */
async function publishers(url: string, devices: string[], count: number, gapMs: number): Promise<number> {
  let sent = 0;
  await Promise.all(
    devices.map(async (device) => {
      const client = await mqtt.connectAsync(url, { clientId: `pub-${device}`, reconnectPeriod: 100 });
      for (let i = 0; i < count; i++) {
        await client.publishAsync(`devices/${device}/monitoring`, sample(T0 + i * 1000, { 'cpu-percent': i, 'memory-used-bytes': i * 10 }), { qos: 1 });
        sent++;
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      await client.endAsync();
    }),
  );
  return sent;
}

function pointsIn(stateDir: string): Map<string, number> {
  const db = new Database(join(stateDir, 'monitor.db'), { readonly: true });
  const rows = db
    .prepare('SELECT d.name AS name, count(*) AS n FROM points p JOIN series s ON s.id = p.series_id JOIN devices d ON d.id = s.device_id GROUP BY d.name')
    .all() as Array<{ name: string; n: number }>;
  db.close();
  return new Map(rows.map((r) => [r.name, r.n]));
}

function missing(stateDir: string, device: string): number[] {
  const db = new Database(join(stateDir, 'monitor.db'), { readonly: true });
  const ts = new Set(
    db
      .prepare("SELECT p.ts FROM points p JOIN series s ON s.id = p.series_id JOIN devices d ON d.id = s.device_id WHERE d.name = ? AND s.key = 'cpu-percent'")
      .pluck()
      .all(device) as number[],
  );
  db.close();
  return Array.from({ length: 100 }, (_, i) => i).filter((i) => !ts.has(T0 + i * 1000));
}

describe('monitor concern in the agent process', () => {
  let broker: Mosquitto;
  let agent: AgentProcess;
  let base: string;
  const thingName = `mon-${process.pid}`;
  const start = (stateDir?: string) =>
    runAgent({
      stateDir,
      config: {
        thingName,
        mqtt: { url: broker.url, reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.4 },
        http: { host: '127.0.0.1', port: Number(new URL(base).port) },
        monitor: {
          enabled: true,
          intervalSeconds: 0.3,
          collect: true,
          alerts: [{ id: 'hot', metric: 'cpu-percent', op: '>', threshold: 95, clear: 80, forSeconds: 30 }],
        },
      },
    });

  beforeAll(async () => {
    // unlimited queue for the collector's persistent session while it is down
    broker = await Mosquitto.start({ listener: ['allow_anonymous true', 'max_queued_messages 0'] });
    base = `http://127.0.0.1:${await freePort()}`;
    agent = start();
    await collecting();
  });
  /** Healthy, and the collector subscribed (samples published before that are not its to store). */
  const collecting = async () => {
    await waitForHealth(base, 200, 20_000);
    await waitFor(async () => {
      const state = await json(await fetch(`${base}/api/v1/state`));
      const monitor = state.tree.children.find((c: { id: string }) => c.id === 'monitor');
      return monitor?.context.collector.state === 'subscribed';
    }, 'collector subscribed');
  };
  afterAll(async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    await broker.stop();
  });

  it('publishes each sample as one JSON document through the outbox, with the always-present keys', async () => {
    const sub = await subscriber(broker.url, `devices/${thingName}/monitoring`);
    const message = await waitFor(() => sub.messages[0], 'a monitoring message');
    await sub.close();
    const doc = JSON.parse(message.payload);
    expect(doc).toMatchObject({ schema: 1, device: thingName });
    expect(Math.abs(doc.ts - Date.now())).toBeLessThan(60_000);
    for (const key of ['cpu-percent', 'memory-used-bytes', 'memory-used-percent', 'uptime-seconds']) expect(doc.values[key], key).toBeTypeOf('number');
    const health = await json(await fetch(`${base}/health`));
    expect(health.concerns.monitor).toMatchObject({ healthy: true });
  });

  it('answers the history API: devices, metric keys, latest, a bounded series; bad queries get 400, unknown devices 404', async () => {
    const { devices } = await waitFor(async () => {
      const body = await json(await fetch(`${base}/api/v1/monitor/devices`));
      // online: a sample within three intervals (on a loaded machine one may come late)
      return body.devices[0]?.status === 'online' ? body : undefined;
    }, 'own device listed');
    expect(devices[0]).toMatchObject({ id: thingName, self: true, status: 'online' });
    const { keys } = await json(await fetch(`${base}/api/v1/monitor/devices/${thingName}/metrics`));
    expect(keys).toEqual(expect.arrayContaining(['cpu-percent', 'uptime-seconds']));
    const latest = await json(await fetch(`${base}/api/v1/monitor/devices/${thingName}/latest`));
    expect(latest.values['memory-used-bytes']).toBeGreaterThan(0);
    const to = Date.now() + 1000;
    const series = await json(await fetch(`${base}/api/v1/monitor/devices/${thingName}/series?key=cpu-percent&from=${to - 600_000}&to=${to}&points=5`));
    expect(series.points.length).toBeGreaterThan(0);
    expect(series.points.length).toBeLessThanOrEqual(5);
    expect(series.points[0]).toEqual({
      ts: expect.any(Number),
      min: expect.any(Number),
      max: expect.any(Number),
      avg: expect.any(Number),
      count: expect.any(Number),
    });
    for (const bad of ['key=CPU', 'key=cpu-percent&points=100000', 'key=cpu-percent&from=10&to=5', 'key=cpu-percent&from=abc', 'key=cpu-percent&extra=1']) {
      const res = await fetch(`${base}/api/v1/monitor/devices/${thingName}/series?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('bad_request');
    }
    expect((await fetch(`${base}/api/v1/monitor/devices/nobody/latest`)).status).toBe(404);
  });

  it('streams stored samples on /ws to a client that subscribes to monitoring', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'subscribe', monitor: [thingName] }));
    const live = await waitFor(() => frames.find((f) => f.type === 'sample'), 'a live sample');
    expect(live).toMatchObject({ device: thingName, values: { 'cpu-percent': expect.any(Number) } });
    ws.send(JSON.stringify({ type: 'subscribe', monitor: 5 }));
    await waitFor(() => frames.find((f) => f.type === 'error'), 'an error frame');
    ws.close();
  });

  it('reads the host inventory once at start: GET /inventory, and retained on devices/<thing>/inventory; no GPU here is no GPU, not an error', async () => {
    const inventory = await waitFor(
      async () => {
        const res = await fetch(`${base}/api/v1/monitor/devices/${thingName}/inventory`);
        return res.status === 200 ? json(res) : undefined;
      },
      'the inventory read',
      30_000,
    );
    expect(inventory).toMatchObject({ schema: 1, device: thingName, memory: { totalBytes: totalmem() }, os: { kernel: release(), hostname: hostname() } });
    expect(inventory.cpu.cores).toBe(cpus().length);
    expect(inventory.cpu.brand).not.toBe('');
    expect(inventory.os.distro).not.toBe('');
    expect(inventory.disks.length).toBeGreaterThan(0);
    for (const disk of inventory.disks) expect(disk.sizeBytes).toBeGreaterThan(0);
    expect(inventory.gpus).toEqual([]); // this machine has none: an empty list, and no problem for it
    expect(inventory.problems.filter((p: string) => p.startsWith('gpus'))).toEqual([]);
    // the chart hears of it once the outbox took it too
    await waitFor(async () => {
      const state = await json(await fetch(`${base}/api/v1/state`));
      return state.tree.children.find((c: { id: string }) => c.id === 'monitor').context.inventory.at === inventory.ts || undefined;
    }, 'the inventory on the chart');
    const state = await json(await fetch(`${base}/api/v1/state`));
    expect(state.tree.children.find((c: { id: string }) => c.id === 'monitor').context.inventory).toEqual({ at: inventory.ts, problems: inventory.problems });
    // retained: a subscriber that comes later still gets it
    const sub = await subscriber(broker.url, `devices/${thingName}/inventory`);
    const message = await waitFor(() => sub.messages[0], 'the retained inventory');
    await sub.close();
    expect(JSON.parse(message.payload)).toEqual(inventory);
    expect((await fetch(`${base}/api/v1/monitor/devices/nobody/inventory`)).status).toBe(404);
  });

  it('keeps the inventories peers publish (collector mode), and refuses a bad one', async () => {
    const peer = await mqtt.connectAsync(broker.url);
    const doc = {
      schema: 1,
      ts: T0,
      system: { manufacturer: 'Raspberry Pi Ltd', model: 'Raspberry Pi 4 Model B', virtual: false },
      os: null,
      cpu: null,
      memory: { totalBytes: 4e9 },
      disks: [],
      gpus: null,
      problems: ['os: timed out after 15000 ms'],
    };
    await peer.publishAsync('devices/peer-inv/inventory', JSON.stringify(doc), { qos: 1, retain: true });
    await peer.publishAsync('devices/peer-inv-bad/inventory', JSON.stringify({ ...doc, memory: { totalBytes: 'lots' } }), { qos: 1 });
    await peer.endAsync();
    const got = await waitFor(async () => {
      const res = await fetch(`${base}/api/v1/monitor/devices/peer-inv/inventory`);
      return res.status === 200 ? json(res) : undefined;
    }, 'the peer inventory stored');
    expect(got).toEqual({ ...doc, device: 'peer-inv' });
    await waitFor(
      () => agent.logs.find((l) => l.msg?.toString().startsWith('monitoring sample refused') && l.device === 'peer-inv-bad'),
      'the bad inventory refused',
    );
    expect((await fetch(`${base}/api/v1/monitor/devices/peer-inv-bad/inventory`)).status).toBe(404);
  });

  it('collects peers: many publishers stored under their topic id, bad payloads counted and dropped', async () => {
    const devices = Array.from({ length: 20 }, (_, i) => `peer-${i}`);
    const figure = (text: string, name: string) => Number(new RegExp(`edgevisor_monitor_collector_${name}_total (\\d+)`).exec(text)?.[1]);
    const before = await (await fetch(`${base}/metrics`)).text();
    const sent = await publishers(broker.url, devices, 10, 0);
    const bad = await mqtt.connectAsync(broker.url);
    await bad.publishAsync('devices/peer-bad/monitoring', 'not json', { qos: 1 });
    await bad.publishAsync('devices/peer-bad/monitoring', JSON.stringify({ schema: 1, ts: 5, values: { 'cpu-percent': 'high' } }), { qos: 1 });
    await bad.publishAsync('devices/peer-0/monitoring', JSON.stringify({ schema: 2, ts: 5, values: {} }), { qos: 1 });
    // over the 64 KiB a sample may have: refused before it is parsed
    await bad.publishAsync('devices/peer-big/monitoring', JSON.stringify({ schema: 1, ts: T0, values: { 'cpu-percent': 1 }, pad: 'x'.repeat(70_000) }), {
      qos: 1,
    });
    await bad.endAsync();
    expect(sent).toBe(200);
    await waitFor(async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      return figure(metrics, 'rejects') - figure(before, 'rejects') === 4 && figure(metrics, 'messages') - figure(before, 'messages') >= 204;
    }, 'collector figures on /metrics');
    const listed = (await json(await fetch(`${base}/api/v1/monitor/devices`))).devices.map((d: { id: string }) => d.id);
    expect(listed).toEqual(expect.arrayContaining(devices));
    expect(listed).not.toContain('peer-bad');
    expect(listed).not.toContain('peer-big');
    const series = await json(await fetch(`${base}/api/v1/monitor/devices/peer-7/series?key=cpu-percent&from=${T0}&to=${T0 + 10_000}&points=100`));
    expect(series.points.map((p: { avg: number }) => p.avg)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(agent.logs.filter((l) => l.msg?.toString().startsWith('monitoring sample refused') && l.device === 'peer-bad')).toHaveLength(1);
  });

  it('loses nothing when the collector is killed with SIGKILL during ingest and started again', { timeout: 90_000 }, async () => {
    const devices = Array.from({ length: 10 }, (_, i) => `crash-${i}`);
    const publishing = publishers(broker.url, devices, 100, 20);
    await waitFor(() => (pointsIn(agent.stateDir).get('crash-0') ?? 0) > 20 || undefined, 'ingest under way');
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = start(agent.stateDir);
    const sent = await publishing;
    expect(sent).toBe(1000);
    await collecting();
    let counts = new Map<string, number>();
    await waitFor(() => ((counts = pointsIn(agent.stateDir)), devices.every((d) => counts.get(d) === 200)) || undefined, 'every sample stored', 20_000).catch(
      (error) => {
        throw new Error(
          `${error.message}: ${JSON.stringify([...counts].filter(([d]) => d.startsWith('crash-')))}; missing ${JSON.stringify(missing(agent.stateDir, 'crash-0'))} logs ${JSON.stringify(agent.logs.filter((l) => l.ns === 'monitor'))}`,
        );
      },
    );
  });
});
