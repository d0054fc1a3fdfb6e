import { Hono, type Context } from 'hono';
import { loadStaticFiles, negotiate, type StaticFile } from '../static-files.js';

/** Content-hashed assets never change under their name; the page itself is revalidated each time. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';
/** Everything the page needs is its own; nothing is fetched from elsewhere. */
const PAGE_POLICY =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** The built page's files, read on first use (not at agent start) and then held in memory. */
export function dashboardFiles(dir: string): () => Map<string, StaticFile> {
  let files: Map<string, StaticFile> | undefined;
  return () => (files ??= loadStaticFiles(dir));
}

/**
 * GET / (the dashboard) and /assets/*: built by scripts/dashboard-build.mjs into `dir`,
 * served from memory with the precompressed variant the browser accepts.
 */
export function dashboardRoutes(deps: { files: () => Map<string, StaticFile> }) {
  const send = (c: Context, file: StaticFile, cacheControl: string) => {
    c.header('Cache-Control', cacheControl);
    c.header('ETag', file.etag);
    c.header('Vary', 'Accept-Encoding');
    c.header('X-Content-Type-Options', 'nosniff');
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304);
    const { body, encoding } = negotiate(file, c.req.header('accept-encoding'));
    if (encoding) c.header('Content-Encoding', encoding);
    c.header('Content-Type', file.type);
    c.header('Content-Length', String(body.length));
    return c.req.method === 'HEAD' ? c.body(null) : c.body(body as Uint8Array<ArrayBuffer>);
  };
  const page = (c: Context) => {
    const index = deps.files().get('/index.html');
    if (!index) return c.text('the dashboard is not built: run npm run build\n', 503);
    c.header('Content-Security-Policy', PAGE_POLICY);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    return send(c, index, REVALIDATE);
  };
  return new Hono()
    .get('/', page)
    .get('/index.html', page)
    .get('/assets/:name', (c) => {
      const file = deps.files().get(`/assets/${c.req.param('name')}`);
      return file ? send(c, file, IMMUTABLE) : c.json({ error: 'not_found', message: `no asset ${c.req.param('name')}` }, 404);
    });
}

/** GET /api/v1/machines: every machine in machines/index.ts as states, transitions and an
 * automatic layout, computed at build time from the registry (dashboard-build.mjs). */
export function machinesRoutes(deps: { files: () => Map<string, StaticFile> }) {
  return new Hono().get('/', (c) => {
    const file = deps.files().get('/machines.json');
    if (!file) return c.json({ error: 'unavailable', message: 'the machine layouts are not built: run npm run build' }, 503);
    const { body, encoding } = negotiate(file, c.req.header('accept-encoding'));
    if (encoding) c.header('Content-Encoding', encoding);
    c.header('Vary', 'Accept-Encoding');
    c.header('Content-Type', file.type);
    return c.body(body as Uint8Array<ArrayBuffer>);
  });
}
