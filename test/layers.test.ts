import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers, lowest first. A module may import from its own layer and the ones below, never
 * from one above: the charts know nothing of src/, the domain code knows nothing of actors,
 * HTTP or the runtime that wires them. Each entry is a path under the repository root.
 */
const layers: string[][] = [
  ['machines'],
  ['src/log.ts', 'src/errors.ts', 'src/events.ts', 'src/slot.ts', 'src/observe.ts', 'src/closing.ts', 'src/config', 'src/views.ts'],
  ['src/mqtt', 'src/outbox', 'src/jobs', 'src/devices', 'src/firmware', 'src/monitor', 'src/alerts', 'src/broker'],
  ['src/actors', 'src/metrics.ts', 'src/supervision-log.ts', 'src/systemd-notify.ts'],
  ['src/http'],
  ['src/runtime.ts', 'src/inspector.ts'],
  ['src/cli.ts', 'src/publish-command.ts', 'src/main.ts'],
];

const root = join(import.meta.dirname, '..');
const sources = ['machines', 'src'].flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f)),
);

function layerOf(file: string): number {
  const index = layers.findIndex((layer) => layer.some((entry) => file === entry || file.startsWith(`${entry}/`)));
  if (index < 0) throw new Error(`${file} is in no layer: add it to test/layers.test.ts`);
  return index;
}

describe('layers', () => {
  it.each(sources)('%s imports nothing from a higher layer', (file) => {
    const own = layerOf(file);
    const source = readFileSync(join(root, file), 'utf8');
    for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)) {
      const target = relative(root, normalize(join(root, dirname(file), spec))).replace(/\.js$/, '.ts');
      expect(layerOf(target), `${file} imports ${target}`).toBeLessThanOrEqual(own);
    }
  });
});
