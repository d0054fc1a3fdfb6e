import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../machines');
const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));

describe('machines/ stays pure', () => {
  it.each(files)('%s imports only xstate and relative files, and touches no clock, randomness or process', (file) => {
    const source = readFileSync(join(root, file), 'utf8');
    const imports = [...source.matchAll(/from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]);
    for (const spec of imports) expect(spec === 'xstate' || spec.startsWith('./') || spec.startsWith('../'), spec).toBe(true);
    expect(source).not.toMatch(/\b(Date\.now|new Date|Math\.random|setTimeout|setInterval|process\.)/);
  });
});
