import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signatureTag, SIGNATURE_ANNOTATION } from '../../src/firmware/cosign.js';
import { pushFirmware } from '../../src/firmware/push.js';
import { MEDIA, RegistryClient, sha256 } from '../../src/firmware/registry.js';
import { runAgent, uniqueThingName, waitForHealth, type AgentProcess } from '../support/agent.js';
import { makePki } from '../support/certs.js';
import { esp32Update, fakeImage, harborPush, push } from '../support/firmware.js';
import { subscriber } from '../support/mqtt.js';
import { freePort, waitFor } from '../support/ports.js';
import { DockerRegistry, RegistryProxy } from '../support/registry.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startAgent(firmware: Record<string, unknown>, options: { stateDir?: string; env?: Record<string, string> } = {}) {
  const port = await freePort();
  const agent = runAgent({
    config: {
      thingName: uniqueThingName('fw'),
      mqtt: { url: inject('mqttUrl'), reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
      http: { port },
      firmware: { enabled: true, freshnessSeconds: 3600, ...firmware },
    },
    stateDir: options.stateDir,
    env: options.env,
  });
  const stop = async () => {
    if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
  };
  cleanups.push(stop);
  const base = `http://127.0.0.1:${port}`;
  await waitForHealth(base, 200, 15_000).catch((error) => {
    throw new Error(`${error}\n${agent.stdout()}\n${agent.stderr()}`);
  });
  return { agent, base, port, stop };
}

const get = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
};
const versionBody = (version: string, image: Buffer) => `${version}\n${crc32(image)}\n${image.length}`;
const logsOf = (agent: AgentProcess, msg: string) => agent.logs.filter((l) => l.msg === msg);

describe('firmware against a real docker-registry (anonymous, behind a counting proxy)', () => {
  let registry: DockerRegistry;
  let proxy: RegistryProxy;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  const v1 = fakeImage(300_000);
  const v110 = fakeImage(200_000);
  const stateDir = mkdtempSync(join(tmpdir(), 'edgevisor-fw-state-'));

  beforeAll(async () => {
    registry = await DockerRegistry.start();
    cleanups.push(() => registry.stop());
    proxy = await new RegistryProxy({ host: '127.0.0.1', port: registry.port }).start();
    cleanups.push(() => proxy.stop());
    // Never sorted by the registry, and only strict semver counts: 1.10.0 beats 1.9.0, v9.9.9 and latest are not versions.
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: '1.9.0', bytes: v1 });
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: '1.10.0', bytes: v110 });
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: 'latest', bytes: fakeImage(100) });
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: 'v9.9.9', bytes: fakeImage(100) });
    agent = await startAgent({ registry: { url: proxy.host, insecure: true, repositoryPrefix: 'fw/' }, notifyTopicPrefix: `ota-${process.pid}` }, { stateDir });
  });

  it("answers OtaFlux's 400 for a missing device and 404 with its body for an unknown one", async () => {
    for (const url of [`${agent.base}/version`, `${agent.base}/version?device=`, `${agent.base}/firmware`]) {
      const res = await get(url);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(res.body.toString()).toBe("Missing required query parameter: 'device'");
    }
    const missing = await get(`${agent.base}/version?device=no-such-board`);
    expect(missing.status).toBe(404);
    expect(missing.body.toString()).toBe("No firmware for device 'no-such-board'");
    expect((await get(`${agent.base}/firmware?device=no-such-board`)).status).toBe(404);
  });

  it('refuses an id that is not one repository path component with 400, without asking the registry', async () => {
    proxy.reset();
    for (const device of ['../etc', 'Esp32', 'a/b', 'a..b', 'x'.repeat(200), '-a', 'a%2Fb', 'a b']) {
      const res = await get(`${agent.base}/version?device=${encodeURIComponent(device)}`);
      expect(res.status, device).toBe(400);
    }
    expect(proxy.counts).toEqual({ tags: 0, manifests: 0, blobs: 0, token: 0, other: 0 });
  });

  it('100 concurrent cold requests share one tags list, one manifest and one blob fetch; later ones ask the registry nothing', async () => {
    proxy.reset();
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`${agent.base}/${i % 2 ? 'version' : 'firmware'}?device=esp32-kitchen`)));
    expect(answers.map((a) => a.status)).toEqual(Array(100).fill(200));
    for (const [i, a] of answers.entries()) expect(a.body.equals(i % 2 ? Buffer.from(versionBody('1.10.0', v110)) : v110)).toBe(true);
    expect(proxy.counts).toMatchObject({ tags: 1, manifests: 1, blobs: 1 });
    proxy.reset();
    for (let i = 0; i < 20; i++) expect((await get(`${agent.base}/version?device=esp32-kitchen`)).status).toBe(200);
    expect(proxy.counts).toEqual({ tags: 0, manifests: 0, blobs: 0, token: 0, other: 0 });
  });

  it('serves /version as OtaFlux: text, <version>\\n<crc32>\\n<size>, no trailing newline', async () => {
    const res = await get(`${agent.base}/version?device=esp32-kitchen`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.body.toString()).toBe(versionBody('1.10.0', v110));
    expect(res.body.at(-1)).not.toBe(0x0a);
  });

  it('serves /firmware with Content-Length (never chunked), checksums, HEAD, ranges and ETag', async () => {
    const full = await get(`${agent.base}/firmware?device=esp32-kitchen`);
    expect(full.status).toBe(200);
    expect(full.headers.get('content-type')).toBe('application/octet-stream');
    expect(full.headers.get('content-length')).toBe(String(v110.length));
    expect(full.headers.get('transfer-encoding')).toBeNull();
    expect(full.headers.get('x-firmware-crc32')).toBe(String(crc32(v110)));
    expect(full.headers.get('x-firmware-sha256')).toBe(createHash('sha256').update(v110).digest('hex'));
    expect(full.headers.get('x-md5')).toBe(createHash('md5').update(v110).digest('hex'));
    expect(full.body.equals(v110)).toBe(true);
    const etag = full.headers.get('etag')!;

    const head = await get(`${agent.base}/firmware?device=esp32-kitchen`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(v110.length));
    expect(head.body.length).toBe(0);

    const first = await get(`${agent.base}/firmware?device=esp32-kitchen`, { headers: { range: 'bytes=0-0' } });
    expect(first.status).toBe(206);
    expect(first.headers.get('content-range')).toBe(`bytes 0-0/${v110.length}`);
    expect(first.body).toEqual(v110.subarray(0, 1));
    // ESP-IDF's last piece asks one past the end: clamped.
    const last = await get(`${agent.base}/firmware?device=esp32-kitchen`, { headers: { range: `bytes=196608-${v110.length}` } });
    expect(last.status).toBe(206);
    expect(last.headers.get('content-range')).toBe(`bytes 196608-${v110.length - 1}/${v110.length}`);
    expect(last.body.equals(v110.subarray(196608))).toBe(true);
    const resume = await get(`${agent.base}/firmware?device=esp32-kitchen`, { headers: { range: 'bytes=1000-' } });
    expect(resume.body.equals(v110.subarray(1000))).toBe(true);
    const beyond = await get(`${agent.base}/firmware?device=esp32-kitchen`, { headers: { range: `bytes=${v110.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${v110.length}`);

    const same = await get(`${agent.base}/firmware?device=esp32-kitchen`, { headers: { 'if-none-match': etag } });
    expect(same.status).toBe(304);
    expect(same.body.length).toBe(0);
  });

  it('works with the ESP32 raw-socket client: stray CRLF, keep-alive /version, then /firmware read to EOF', async () => {
    const update = await esp32Update(agent.port, 'esp32-kitchen');
    expect(update.versionHead).toMatch(/^HTTP\/1\.1 200/);
    expect(update.versionBody).toBe(versionBody('1.10.0', v110));
    expect(update.firmwareHead).toMatch(/^HTTP\/1\.1 200/);
    expect(update.firmwareHead.toLowerCase()).not.toContain('transfer-encoding');
    expect(update.image.equals(v110)).toBe(true);
  });

  it('understands image indexes and Docker v2 manifests as well as ORAS artifacts', async () => {
    const indexed = fakeImage(5000);
    const docker = fakeImage(6000);
    await push(registry.host, { repo: 'fw/board-index', tag: '0.1.0', bytes: indexed, layout: 'index' });
    await push(registry.host, { repo: 'fw/board-docker', tag: '0.2.0', bytes: docker, layout: 'docker' });
    expect((await get(`${agent.base}/firmware?device=board-index`)).body.equals(indexed)).toBe(true);
    expect((await get(`${agent.base}/firmware?device=board-docker`)).body.equals(docker)).toBe(true);
  });

  it('shows each entry on /api/v1/state and counts hits, misses and entries on /metrics', async () => {
    const state = (await (await fetch(`${agent.base}/api/v1/state`)).json()) as {
      tree: { children: Array<{ id: string; children: Array<{ id: string; state: unknown; context: any }> }> };
    };
    const manager = state.tree.children.find((c) => c.id === 'firmware')!;
    const entry = manager.children.find((c) => c.id === 'firmware:esp32-kitchen')!;
    expect(entry.state).toMatchObject({ ready: expect.any(String) });
    expect(entry.context.current).toMatchObject({ version: '1.10.0', size: v110.length, crc32: crc32(v110), digest: sha256(v110) });
    const metrics = await (await fetch(`${agent.base}/metrics`)).text();
    expect(metrics).toMatch(/edgevisor_firmware_cache_hits_total [1-9]/);
    expect(metrics).toMatch(/edgevisor_firmware_cache_misses_total [1-9]/);
    expect(metrics).toMatch(/edgevisor_firmware_cache_entries [1-9]/);
    expect(metrics).toMatch(/edgevisor_firmware_cache_bytes [1-9]/);
  });

  it('an unknown device is asked of the registry once: later requests get 404 without a registry call, until a push (webhook) makes it found at once', async () => {
    proxy.reset();
    for (let i = 0; i < 10; i++) expect((await get(`${agent.base}/version?device=esp32-garage`)).status).toBe(404);
    expect((await get(`${agent.base}/firmware?device=esp32-garage`)).status).toBe(404);
    expect(proxy.counts).toMatchObject({ tags: 1, manifests: 0, blobs: 0 });
    const state = (await (await fetch(`${agent.base}/api/v1/state`)).json()) as { tree: { children: Array<{ id: string; children: Array<{ id: string }> }> } };
    const firmware = state.tree.children.find((c) => c.id === 'firmware');
    expect(firmware?.children.find((c) => c.id === 'firmware:esp32-garage')).toMatchObject({ state: 'missing' });
    const image = fakeImage(50_000);
    await push(registry.host, { repo: 'fw/esp32-garage', tag: '0.1.0', bytes: image });
    const hook = await fetch(`${agent.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'esp32-garage', '0.1.0')),
    });
    expect(hook.status).toBe(200);
    expect((await get(`${agent.base}/version?device=esp32-garage`)).body.toString()).toBe(versionBody('0.1.0', image));
  });

  it('a Harbor push webhook refreshes the device and announces {"version","size"} retained at QoS 1', async () => {
    const v111 = fakeImage(150_000);
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: '1.11.0', bytes: v111 });
    // The cached, fresh entry does not know yet: the registry is not on the hot path.
    expect((await get(`${agent.base}/version?device=esp32-kitchen`)).body.toString()).toBe(versionBody('1.10.0', v110));
    const hook = await fetch(`${agent.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'esp32-kitchen', '1.11.0')),
    });
    expect(hook.status).toBe(200);
    expect((await get(`${agent.base}/version?device=esp32-kitchen`)).body.toString()).toBe(versionBody('1.11.0', v111));
    expect((await get(`${agent.base}/firmware?device=esp32-kitchen`)).body.equals(v111)).toBe(true);
    // A subscriber that comes later still gets it: retained.
    const sub = await subscriber(inject('mqttUrl'), `ota-${process.pid}/esp32-kitchen`);
    cleanups.push(() => sub.close());
    const notice = await waitFor(() => sub.messages[0], 'the retained notice');
    expect(JSON.parse(notice.payload)).toEqual({ version: '1.11.0', size: v111.length });
    expect(notice.payload).toBe(`{"version":"1.11.0","size":${v111.length}}`);
    expect(notice.retain).toBe(true);
  });

  it("answers other Harbor events 200 and changes nothing; malformed bodies get OtaFlux's codes", async () => {
    proxy.reset();
    const post = (body: string, type = 'application/json') =>
      fetch(`${agent.base}/webhooks/harbor`, { method: 'POST', headers: { 'content-type': type }, body });
    // Harbor leaves fields out of deletions: still 200 here (OtaFlux answers those 422).
    expect(
      (await post(JSON.stringify({ type: 'DELETE_ARTIFACT', occur_at: 1, operator: 'admin', event_data: { resources: [{ tag: '1.11.0' }] } }))).status,
    ).toBe(200);
    expect((await post(JSON.stringify({ ...harborPush('fw', 'esp32-kitchen', '1.0.0'), type: 'PULL_ARTIFACT' }))).status).toBe(200);
    expect(proxy.counts.tags).toBe(0);
    expect((await post('{"type":"PUSH_ARTIFACT"', 'application/json')).status).toBe(400);
    expect((await post(JSON.stringify(harborPush('fw', 'x', '1.0.0')), 'text/plain')).status).toBe(415);
    const { event_data: _, ...noData } = harborPush('fw', 'x', '1.0.0');
    expect((await post(JSON.stringify(noData))).status).toBe(422);
    // A push to another project's repository of the same name is not this device's.
    expect((await post(JSON.stringify(harborPush('other', 'esp32-kitchen', '9.0.0')))).status).toBe(200);
    expect(proxy.counts.tags).toBe(0);
    expect((await get(`${agent.base}/health`)).status).toBe(200);
  });

  it('never serves a tampered blob, and keeps serving the last good build', async () => {
    const bad = fakeImage(120_000);
    const pushed = await push(registry.host, { repo: 'fw/esp32-kitchen', tag: '1.12.0', bytes: bad });
    registry.tamper(pushed.layerDigest);
    const hook = await fetch(`${agent.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'esp32-kitchen', '1.12.0')),
    });
    expect(hook.status).toBe(200);
    const version = (await get(`${agent.base}/version?device=esp32-kitchen`)).body.toString();
    expect(version).toMatch(/^1\.11\.0\n/);
    const served = (await get(`${agent.base}/firmware?device=esp32-kitchen`)).body;
    expect(served.length).toBe(150_000);
    expect(served.subarray(0, 16).equals(bad.subarray(0, 16))).toBe(false);
    expect(logsOf(agent.agent, 'firmware blob does not match its digest: refused')).not.toHaveLength(0);
    // A cold device whose only build is tampered: 404, never the bad bytes.
    const only = await push(registry.host, { repo: 'fw/board-tampered', tag: '1.0.0', bytes: fakeImage(3000) });
    registry.tamper(only.layerDigest);
    expect((await get(`${agent.base}/firmware?device=board-tampered`)).status).toBe(404);
  });

  it('keeps serving the last good firmware while the registry is down; a restarted agent serves it from disk', async () => {
    await registry.stop();
    const hook = await fetch(`${agent.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'esp32-kitchen', '1.13.0')),
    });
    expect(hook.status).toBe(200);
    expect((await get(`${agent.base}/version?device=esp32-kitchen`)).body.toString()).toMatch(/^1\.11\.0\n/);
    expect((await get(`${agent.base}/firmware?device=esp32-kitchen`)).body.length).toBe(150_000);
    expect((await get(`${agent.base}/version?device=never-seen`)).status).toBe(404);
    const metrics = await (await fetch(`${agent.base}/metrics`)).text();
    expect(metrics).toMatch(/edgevisor_firmware_registry_errors_total [1-9]/);

    await agent.stop();
    const again = await startAgent({ registry: { url: proxy.host, insecure: true, repositoryPrefix: 'fw' } }, { stateDir });
    const version = await get(`${again.base}/version?device=esp32-kitchen`);
    expect(version.status).toBe(200);
    expect(version.body.toString()).toMatch(/^1\.11\.0\n/);
    const image = await get(`${again.base}/firmware?device=esp32-kitchen`);
    expect(image.body.length).toBe(150_000);
    expect(image.headers.get('x-firmware-sha256')).toBe(createHash('sha256').update(image.body).digest('hex'));

    // The registry back, the same bytes re-tagged as a new version: /version follows the tag.
    await registry.resume();
    await push(registry.host, { repo: 'fw/esp32-kitchen', tag: '1.13.0', bytes: image.body });
    const retagged = await fetch(`${again.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'esp32-kitchen', '1.13.0')),
    });
    expect(retagged.status).toBe(200);
    expect((await get(`${again.base}/version?device=esp32-kitchen`)).body.toString()).toBe(versionBody('1.13.0', image.body));
    expect((await get(`${again.base}/firmware?device=esp32-kitchen`)).headers.get('x-firmware-version')).toBe('1.13.0');
  });
});

describe('firmware refreshes that change nothing, and a registry that is down', () => {
  let registry: DockerRegistry;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  const topic = `ota-out-${process.pid}`;
  const good = fakeImage(50_000);
  const webhook = (tag: string) =>
    fetch(`${agent.base}/webhooks/harbor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(harborPush('fw', 'board-out', tag)),
    });
  const health = async () => {
    const res = await fetch(`${agent.base}/health`);
    return {
      status: res.status,
      body: (await res.json()) as { reasons: string[]; concerns: Record<string, { state: string; healthy: boolean; reason?: string }> },
    };
  };

  beforeAll(async () => {
    registry = await DockerRegistry.start();
    cleanups.push(() => registry.stop());
    await push(registry.host, { repo: 'fw/board-out', tag: '1.0.0', bytes: good });
    agent = await startAgent({ registry: { url: registry.host, insecure: true, repositoryPrefix: 'fw' }, notifyTopicPrefix: topic });
  });

  it('a refresh refused for a bad digest is not logged as refreshed and announces nothing; a real change is announced', async () => {
    expect((await get(`${agent.base}/version?device=board-out`)).body.toString()).toBe(versionBody('1.0.0', good));
    const sub = await subscriber(inject('mqttUrl'), `${topic}/board-out`);
    cleanups.push(() => sub.close());
    const bad = await push(registry.host, { repo: 'fw/board-out', tag: '1.1.0', bytes: fakeImage(40_000) });
    registry.tamper(bad.layerDigest);
    expect((await webhook('1.1.0')).status).toBe(200);
    expect(logsOf(agent.agent, 'webhook push: the refresh failed; the last good build is still served')).toHaveLength(1);
    expect(logsOf(agent.agent, 'firmware refreshed by webhook')).toHaveLength(0);
    // a push that changes nothing is not announced either
    expect((await webhook('1.0.0')).status).toBe(200);
    // then a real change: its notice is the first and only one the subscriber sees
    const next = fakeImage(45_000);
    await push(registry.host, { repo: 'fw/board-out', tag: '1.2.0', bytes: next });
    expect((await webhook('1.2.0')).status).toBe(200);
    await waitFor(() => sub.messages.length > 0 || undefined, 'the notice of 1.2.0');
    expect(sub.messages.map((m) => JSON.parse(m.payload))).toEqual([{ version: '1.2.0', size: next.length }]);
    expect(logsOf(agent.agent, 'firmware refreshed by webhook')).toHaveLength(1);
    expect((await get(`${agent.base}/version?device=board-out`)).body.toString()).toBe(versionBody('1.2.0', next));
  });

  it('a registry that is down: logged once, /health shows firmware degraded with the reason, the last good build is served, and its return is logged', async () => {
    const served = (await get(`${agent.base}/firmware?device=board-out`)).body;
    const before = await health();
    expect(before.body.reasons, agent.agent.stdout().slice(-6000)).toEqual([]);
    await registry.stop();
    for (const tag of ['1.3.0', '1.3.1', '1.3.2']) expect((await webhook(tag)).status).toBe(200);
    const down = await health();
    expect(down.status).toBe(503);
    expect(down.body.concerns.firmware).toMatchObject({ healthy: false, state: expect.stringMatching(/^degraded/) });
    expect(down.body.concerns.firmware.reason).toMatch(/registry unreachable \(.*ECONNREFUSED.*\); serving the last good builds/);
    expect(down.body.reasons.some((r) => r.startsWith('firmware: '))).toBe(true);
    expect((await get(`${agent.base}/firmware?device=board-out`)).body.equals(served)).toBe(true);
    expect(logsOf(agent.agent, 'firmware registry unreachable: serving the last good builds until it answers')).toHaveLength(1);
    // back: seen by the probe, with no device asking
    await registry.resume();
    await waitFor(async () => (await health()).status === 200 || undefined, 'firmware healthy again', 30_000);
    expect(logsOf(agent.agent, 'firmware registry reachable again')).toHaveLength(1);
    expect(logsOf(agent.agent, 'firmware registry unreachable: serving the last good builds until it answers')).toHaveLength(1);
  });
});

describe('firmware with registry authentication', () => {
  const user = { name: 'edge', password: 'pa55-word' };

  it('reads from an HTTPS registry whose CA the system trusts (NODE_EXTRA_CA_CERTS)', async () => {
    const pki = makePki();
    // Pushed over plain HTTP (this process does not trust the test CA), then served over TLS from the same storage.
    const plain = await DockerRegistry.start();
    const image = fakeImage(2048);
    await pushFirmware(new RegistryClient({ url: plain.url }), { repo: 'fw/esp32-tls', tag: '1.0.0', bytes: image });
    await plain.stop();
    const registry = await DockerRegistry.start({ tls: { cert: pki.serverCert, key: pki.serverKey }, storage: plain.root });
    cleanups.push(() => registry.stop());
    const { base } = await startAgent({ registry: { url: registry.host, repositoryPrefix: 'fw' } }, { env: { NODE_EXTRA_CA_CERTS: pki.ca } });
    const res = await get(`${base}/firmware?device=esp32-tls`);
    expect(res.status).toBe(200);
    expect(res.body.equals(image)).toBe(true);
  });

  it('reads from an htpasswd (Basic) registry with the configured credentials, and refuses a build with no valid cosign signature when a key is set', async () => {
    const registry = await DockerRegistry.start({ user });
    cleanups.push(() => registry.stop());
    const image = fakeImage(4096);
    const unsigned = fakeImage(4096);
    const pushed = await push(registry.host, { repo: 'ota/esp32-signed', tag: '2.0.0', bytes: image, user });
    await push(registry.host, { repo: 'ota/esp32-unsigned', tag: '2.0.0', bytes: unsigned, user });
    // A cosign signature the way `cosign sign --key` stores it: the simple-signing payload as a layer of sha256-<hex>.sig.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(mkdtempSync(join(tmpdir(), 'edgevisor-cosign-')), 'cosign.pub');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const client = new RegistryClient({ url: registry.host, insecure: true, username: user.name, password: user.password });
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': `${registry.host}/ota/esp32-signed` },
          image: { 'docker-manifest-digest': pushed.manifestDigest },
          type: 'cosign container image signature',
        },
        optional: null,
      }),
    );
    const payloadDigest = await client.pushBlob('ota/esp32-signed', payload);
    const empty = await client.pushBlob('ota/esp32-signed', Buffer.from('{}'));
    await client.pushManifest('ota/esp32-signed', signatureTag(pushed.manifestDigest), {
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: empty, size: 2 },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: payloadDigest,
          size: payload.length,
          annotations: { [SIGNATURE_ANNOTATION]: sign('sha256', payload, privateKey).toString('base64') },
        },
      ],
    });

    const { base } = await startAgent({
      registry: { url: registry.host, insecure: true, repositoryPrefix: 'ota', username: user.name, password: user.password },
      cosignPublicKey: keyFile,
    });
    const signed = await get(`${base}/firmware?device=esp32-signed`);
    expect(signed.status).toBe(200);
    expect(signed.body.equals(image)).toBe(true);
    expect((await get(`${base}/version?device=esp32-unsigned`)).status).toBe(404);

    const wrong = await startAgent({ registry: { url: registry.host, insecure: true, repositoryPrefix: 'ota', username: user.name, password: 'wrong' } });
    expect((await get(`${wrong.base}/version?device=esp32-signed`)).status).toBe(404);
  });

  it('follows a Harbor-style Bearer challenge to the token service and Link-paged tags, and enforces the webhook secret', async () => {
    const registry = await DockerRegistry.start();
    cleanups.push(() => registry.stop());
    const proxy = await new RegistryProxy({ host: '127.0.0.1', port: registry.port }, { user: 'robot$edge', password: 'tok-pass' }, 2).start();
    cleanups.push(() => proxy.stop());
    const image = fakeImage(10_000);
    // Pages of two, sorted: the highest version is alone on the last page.
    for (const tag of ['0.1.0', '0.2.0', '1.0.0', '2.0.0']) await push(registry.host, { repo: 'proj/esp32-hall', tag, bytes: fakeImage(100) });
    await push(registry.host, { repo: 'proj/esp32-hall', tag: '3.1.4', bytes: image });
    const secret = 'Bearer harbor-webhook-secret';
    const { base } = await startAgent({
      registry: { url: `http://${proxy.host}`, insecure: true, repositoryPrefix: 'proj', username: 'robot$edge', password: 'tok-pass' },
      webhookSecret: secret,
    });
    const res = await get(`${base}/firmware?device=esp32-hall`);
    expect(res.status).toBe(200);
    expect(res.body.equals(image)).toBe(true);
    expect(proxy.counts.token).toBeGreaterThanOrEqual(1);
    expect(proxy.counts.tags).toBeGreaterThanOrEqual(3);
    expect((await get(`${base}/version?device=esp32-hall`)).body.toString()).toMatch(/^3\.1\.4\n/);

    const body = JSON.stringify(harborPush('proj', 'esp32-hall', '3.1.4'));
    expect((await fetch(`${base}/webhooks/harbor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(401);
    expect(
      (await fetch(`${base}/webhooks/harbor`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body })).status,
    ).toBe(401);
    expect(
      (await fetch(`${base}/webhooks/harbor`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: secret }, body })).status,
    ).toBe(200);
  });
});
