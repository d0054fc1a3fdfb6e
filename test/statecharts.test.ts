import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { outDir, renderAll } from '../scripts/render-machines.js';

describe('committed statechart diagrams', () => {
  it.each(Object.entries(renderAll()))('docs/statecharts/%s matches its machine (run `npm run statecharts` after a chart change)', (file, text) => {
    expect(readFileSync(join(outDir, file), 'utf8')).toBe(text);
  });

  it('draws states, guarded eventless transitions and delays from the definition', () => {
    const link = renderAll()['link.md'];
    expect(link).toContain('link_offline --> link_session: always [autoConnect]');
    expect(link).toContain('link_backingOff --> link_session: after retryDelay');
    expect(link).toContain('state "session (invokes mqttClient)" as link_session');
  });
});
