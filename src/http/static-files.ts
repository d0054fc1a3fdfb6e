import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';

/** A built file held in memory with its precompressed variants (written at build time). */
export interface StaticFile {
  body: Buffer;
  gzip?: Buffer;
  br?: Buffer;
  type: string;
  etag: string;
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/** The files under `dir` by URL path ("/index.html", "/assets/app-3f2a….js"); .gz and .br
 * siblings become variants. A missing directory is an empty map (the page was not built). */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (path: string): string[] => {
    try {
      return readdirSync(path).flatMap((name) => (statSync(join(path, name)).isDirectory() ? walk(join(path, name)) : [join(path, name)]));
    } catch {
      return [];
    }
  };
  const all = walk(dir);
  const present = new Set(all);
  for (const path of all) {
    if (path.endsWith('.gz') || path.endsWith('.br')) continue;
    const body = readFileSync(path);
    const variant = (suffix: string) => (present.has(path + suffix) ? readFileSync(path + suffix) : undefined);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(`/${relative(dir, path).split('\\').join('/')}`, {
      body,
      gzip: variant('.gz'),
      br: variant('.br'),
      type: types[extname(path)] ?? 'application/octet-stream',
      etag,
    });
  }
  return files;
}

/** The smallest variant the client accepts (brotli, then gzip, then identity). */
export function negotiate(file: StaticFile, acceptEncoding: string | undefined): { body: Buffer; encoding?: 'br' | 'gzip' } {
  const accepts = (coding: string) => new RegExp(`(^|[,\\s])${coding}(?!;\\s*q=0(\\.0*)?(\\s*,|$))`, 'i').test(acceptEncoding ?? '');
  if (file.br && accepts('br')) return { body: file.br, encoding: 'br' };
  if (file.gzip && accepts('gzip')) return { body: file.gzip, encoding: 'gzip' };
  return { body: file.body };
}
