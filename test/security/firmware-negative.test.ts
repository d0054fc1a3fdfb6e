import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runAgent, uniqueThingName, waitForHealth, type AgentProcess } from '../support/agent.js';
import { fakeImage, push } from '../support/firmware.js';
import { freePort } from '../support/ports.js';
import { DockerRegistry, RegistryProxy } from '../support/registry.js';

/** Unknown device ids on /version (issue 12): each is a negative cache entry, and those must not push real builds out of memory. */
describe('a flood of unknown device ids on /version, against a real docker-registry', () => {
  let registry: DockerRegistry;
  let proxy: RegistryProxy;
  const agents: AgentProcess[] = [];
  const image = fakeImage(50_000);

  beforeAll(async () => {
    registry = await DockerRegistry.start();
    proxy = await new RegistryProxy({ host: '127.0.0.1', port: registry.port }).start();
    await push(registry.host, { repo: 'fw/real-board', tag: '1.0.0', bytes: image });
  });
  afterAll(async () => {
    for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    await Promise.all(agents.map((a) => a.exited));
    await proxy?.stop();
    await registry?.stop();
  });

  async function startAgent(firmware: Record<string, unknown>) {
    const port = await freePort();
    const agent = runAgent({
      config: {
        thingName: uniqueThingName('neg'),
        mqtt: { url: inject('mqttUrl'), reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
        http: { port },
        firmware: { enabled: true, freshnessSeconds: 3600, registry: { url: proxy.host, insecure: true, repositoryPrefix: 'fw' }, ...firmware },
      },
    });
    agents.push(agent);
    const base = `http://127.0.0.1:${port}`;
    await waitForHealth(base, 200, 15_000).catch((error) => {
      throw new Error(`${error}\n${agent.stdout()}\n${agent.stderr()}`);
    });
    return base;
  }

  const firmwareEntries = async (base: string): Promise<string[]> => {
    const state = (await (await fetch(`${base}/api/v1/state`)).json()) as { tree: { children: Array<{ id: string; children: Array<{ id: string }> }> } };
    const firmware = state.tree.children.find((c) => c.id === 'firmware');
    return (firmware?.children ?? []).map((c) => c.id);
  };

  it('keeps a real build in memory (no registry request) after 40 unknown ids, with room for only 4 entries', async () => {
    const base = await startAgent({ maxEntries: 4 });
    expect((await fetch(`${base}/version?device=real-board`)).status).toBe(200);
    for (let i = 0; i < 40; i++) {
      const answer = await fetch(`${base}/version?device=unknown-${i}`);
      expect(answer.status).toBe(404);
    }
    proxy.reset();
    const again = await fetch(`${base}/version?device=real-board`);
    expect(again.status).toBe(200);
    expect(await again.text()).toMatch(/^1\.0\.0\n/);
    // Evicted, it would have been loaded from disk as stale and refreshed: a tags request.
    expect(proxy.counts).toEqual({ tags: 0, manifests: 0, blobs: 0, token: 0, other: 0 });
    expect(await firmwareEntries(base)).toContain('firmware:real-board');
  });

  it('bounds the negative entries on their own (firmware.maxNegativeEntries), oldest first', async () => {
    const base = await startAgent({ maxEntries: 4, maxNegativeEntries: 8 });
    expect((await fetch(`${base}/version?device=real-board`)).status).toBe(200);
    for (let i = 0; i < 30; i++) expect((await fetch(`${base}/version?device=nobody-${i}`)).status).toBe(404);
    const entries = await firmwareEntries(base);
    expect(entries).toContain('firmware:real-board');
    expect(entries.filter((id) => id.startsWith('firmware:nobody-'))).toEqual(Array.from({ length: 8 }, (_, i) => `firmware:nobody-${22 + i}`));
    // A remembered negative is answered without the registry.
    proxy.reset();
    expect((await fetch(`${base}/version?device=nobody-29`)).status).toBe(404);
    expect(proxy.counts.tags).toBe(0);
  });
});
