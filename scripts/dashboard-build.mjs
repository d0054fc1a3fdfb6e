// Builds the dashboard (web/) into dist/dashboard/: one JS and one CSS file bundled by esbuild
// (Preact, uPlot and the page's own code; nothing from a CDN, so an air-gapped box serves it all),
// named by content hash so browsers may cache them for good; index.html names them and is
// revalidated on every load. Every file also gets a .gz and a .br beside it (node:zlib, best
// compression), so the agent serves precompressed bytes and compresses nothing at run time.
// The machines' layouts (scripts/machines-layout.mjs) are written as machines.json.
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { layoutAll } from './machines-layout.mjs';

/** The whole page (HTML, JS, CSS) gzip-compressed, at most; test/src/http/dashboard-build.test.ts holds the build to it. */
export const BUDGET_GZIP_BYTES = 150 * 1024;
const out = 'dist/dashboard';

function compressed(path, body) {
  const gzip = gzipSync(body, { level: 9 });
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  writeFileSync(path, body);
  writeFileSync(`${path}.gz`, gzip);
  writeFileSync(`${path}.br`, br);
  return { bytes: body.length, gzip: gzip.length, br: br.length };
}

const hashed = (name, body) => {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return name.replace(/\.(js|css)$/, `-${hash}.$1`);
};

export async function buildDashboard() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: { app: 'web/main.tsx' },
    outdir: out,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const sizes = {};
  const assets = {};
  for (const file of result.outputFiles) {
    const name = hashed(basename(file.path), file.contents);
    assets[name.endsWith('.css') ? 'css' : 'js'] = name;
    sizes[`assets/${name}`] = compressed(join(out, 'assets', name), Buffer.from(file.contents));
  }
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>edgevisor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${assets.css}">
<script type="module" src="/assets/${assets.js}"></script>
</head>
<body><div id="app"></div><noscript>The edgevisor dashboard needs JavaScript.</noscript></body>
</html>
`;
  sizes['index.html'] = compressed(join(out, 'index.html'), Buffer.from(html));
  const machines = await layoutAll();
  compressed(join(out, 'machines.json'), Buffer.from(JSON.stringify(machines)));
  const gzip = Object.values(sizes).reduce((sum, s) => sum + s.gzip, 0);
  writeFileSync(
    join(out, 'manifest.json'),
    JSON.stringify({ budgetGzipBytes: BUDGET_GZIP_BYTES, gzipBytes: gzip, files: sizes, machines: machines.machines.map((m) => m.name) }, null, 2),
  );
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(
    `dashboard: ${kb(gzip)} gzip for the page (budget ${kb(BUDGET_GZIP_BYTES)}): ${Object.entries(sizes)
      .map(([f, s]) => `${f} ${kb(s.gzip)}`)
      .join(', ')}; ${machines.machines.length} machines laid out`,
  );
  if (gzip > BUDGET_GZIP_BYTES) console.warn(`dashboard: over budget by ${kb(gzip - BUDGET_GZIP_BYTES)}`);
  return { gzip, sizes };
}
