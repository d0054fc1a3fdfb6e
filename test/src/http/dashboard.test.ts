import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { machines } from '../../../machines/index.js';
import { appFor, fakeTree } from '../../support/tree.js';

/** The built page (global setup runs npm run build): dist/dashboard/. */
const dir = join(import.meta.dirname, '../../../dist/dashboard');
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const assets = readdirSync(join(dir, 'assets')).filter((f) => !/\.(gz|br)$/.test(f));
const script = assets.find((f) => f.endsWith('.js'))!;

const trees: Array<ReturnType<typeof fakeTree>> = [];
afterEach(() => {
  while (trees.length) trees.pop()!.actor.stop();
});
function app(options: { token?: string; dashboardDir?: string } = { dashboardDir: dir }) {
  const tree = fakeTree();
  trees.push(tree);
  return appFor(tree, options);
}

describe('the dashboard files', () => {
  it('fits the budget: at most 150 KB gzip for the whole page (HTML, JS, CSS)', () => {
    const page = ['index.html', ...assets.map((f) => `assets/${f}`)];
    const gzip = page.reduce((sum, f) => sum + readFileSync(join(dir, `${f}.gz`)).length, 0);
    console.log(`dashboard page: ${(gzip / 1024).toFixed(1)} KB gzip (budget ${manifest.budgetGzipBytes / 1024} KB)`);
    expect(manifest.gzipBytes).toBe(gzip);
    expect(gzip).toBeLessThanOrEqual(150 * 1024);
  });

  it('names assets by content hash and loads nothing from elsewhere', () => {
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    for (const file of assets) expect(file).toMatch(/^app-[0-9a-f]{12}\.(js|css)$/);
    expect(html).toContain(`/assets/${script}`);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(readFileSync(join(dir, 'assets', script), 'utf8')).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)/);
  });
});

describe('GET / and /assets', () => {
  it('serves the page no-cache with a policy of its own, assets immutable and precompressed', async () => {
    const page = await app().request('/', { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-encoding')).toBe('br');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");

    const asset = `/assets/${script}`;
    const br = await app().request(asset, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(br.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(br.headers.get('content-encoding')).toBe('br');
    const gzip = await app().request(asset, { headers: { 'accept-encoding': 'gzip' } });
    expect(gzip.headers.get('content-encoding')).toBe('gzip');
    const plain = await app().request(asset, { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    const bytes = Buffer.from(await plain.arrayBuffer());
    expect(gunzipSync(Buffer.from(await gzip.arrayBuffer())).equals(bytes)).toBe(true);

    const again = await app().request(asset, { headers: { 'if-none-match': br.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await app().request('/assets/app-000000000000.js')).status).toBe(404);
  });

  it('answers 503 with a hint when the page was not built', async () => {
    const res = await app({ dashboardDir: join(dir, 'nonexistent') }).request('/');
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
  });

  it('the page and its assets are open with a token set (the page asks for the token); the API is not', async () => {
    const withToken = app({ token: 'secret-token-0123456789', dashboardDir: dir });
    expect((await withToken.request('/')).status).toBe(200);
    expect((await withToken.request(`/assets/${script}`)).status).toBe(200);
    expect((await withToken.request('/api/v1/machines')).status).toBe(401);
    expect((await withToken.request('/api/v1/ws-ticket', { method: 'POST' })).status).toBe(401);
  });
});

describe('GET /api/v1/machines', () => {
  it('describes and lays out every machine of the registry, from its definition', async () => {
    const res = await app().request('/api/v1/machines', { headers: { 'accept-encoding': 'identity' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { machines: any[] };
    expect(body.machines.map((m) => m.name)).toEqual(Object.keys(machines));
    for (const m of body.machines) {
      expect(m.id).toBe(machines[m.name as keyof typeof machines].id);
      const paths: string[] = [];
      const walk = (n: any) => (paths.push(n.path), n.children.forEach(walk));
      walk(m.root);
      for (const p of paths) expect(m.layout.nodes[p], `${m.name} ${p}`).toMatchObject({ x: expect.any(Number), width: expect.any(Number) });
      for (const e of m.edges) expect(m.layout.edges[e.id].points.length, `${m.name} ${e.id}`).toBeGreaterThanOrEqual(2);
    }
    const job = body.machines.find((m) => m.name === 'job');
    expect(job.root.children.map((c: any) => c.key)).toEqual(expect.arrayContaining(['queued', 'running', 'succeeded', 'failed']));
    expect(job.edges.find((e: any) => e.source === 'queued' && e.target === 'validating')).toBeTruthy();
  });
});
