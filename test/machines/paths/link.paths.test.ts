import { describe, expect, it } from 'vitest';
import { transition } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { linkMachine, type LinkEvent } from '../../../machines/link.js';

const input = { broker: 'mqtt://x', backoff: { minMs: 1000, maxMs: 8000 }, stableMs: 10_000, jitterSeed: 3 };

// Every event the link can see, XState's own (invoke errors, delays) included.
const events = [
  { type: 'mqtt.connected', at: 1 },
  { type: 'mqtt.closed', error: { code: 'ECONNRESET', message: 'reset' } },
  { type: 'link.connect' },
  { type: 'link.disconnect' },
  { type: 'link.reconnect' },
  { type: 'xstate.error.actor.mqttClient', error: new Error('crash') },
  { type: 'xstate.after.retryDelay.link.backingOff' },
  { type: 'xstate.after.stable.link.session.online' },
] as unknown as LinkEvent[];

// Keep the traversal finite: the retry count is capped for the walk.
const paths = getShortestPaths(linkMachine, {
  input,
  events,
  serializeState: (s) => JSON.stringify([s.value, s.context.autoConnect, Math.min(s.context.attempt, 6)]),
  limit: 10_000,
});

describe('link machine, every reachable state', () => {
  it('reaches each of offline, connecting, online and backingOff', () => {
    const values = new Set(paths.map((p) => JSON.stringify(p.state.value)));
    for (const v of ['"offline"', '{"session":"connecting"}', '{"session":"online"}', '"backingOff"']) expect(values).toContain(v);
  });

  it.each(paths.map((p) => [p.steps.map((s) => s.event.type).join(' → ') || '(start)', p] as const))('after %s: invariants hold', (_name, path) => {
    const { value, context } = path.state;
    // healthy exactly when online
    expect(path.state.hasTag('healthy')).toBe(JSON.stringify(value) === '{"session":"online"}');
    // a retry delay is within [ceiling/2, maxMs]
    if (value === 'backingOff') {
      expect(context.retryInMs).toBeGreaterThanOrEqual(input.backoff.minMs / 2);
      expect(context.retryInMs).toBeLessThanOrEqual(input.backoff.maxMs);
    }
    // from anywhere, link.disconnect goes offline and stays there
    const [after] = transition(linkMachine, path.state, { type: 'link.disconnect' });
    expect(after.value).toBe('offline');
  });
});
