import { describe, expect, it } from 'vitest';
import { createActor, createMachine, fromPromise, sendParent, type AnyEventObject } from 'xstate';
import { firmwareMachine, type FirmwareInput } from '../../machines/firmware.js';
import type { firmwareEntryMachine } from '../../machines/firmware-entry.js';
import { flush } from '../support/clock.js';

/** A stand-in entry: records what it is sent; `store` reports bytes to the manager, `fail` ends it. */
const received: Record<string, AnyEventObject[]> = {};
const fakeEntry = createMachine({
  types: {} as { input: { device: string }; context: { device: string; bytes: number } },
  context: ({ input }) => ({ device: input.device, bytes: 0 }),
  initial: 'live',
  states: {
    live: {
      entry: ({ context }) => (received[context.device] = []),
      on: {
        store: {
          actions: sendParent(({ context, event }) => ({
            type: 'firmware.stored',
            device: context.device,
            bytes: (event as unknown as { bytes: number }).bytes,
          })),
        },
        fail: 'failed',
        '*': { actions: ({ context, event }) => received[context.device].push(event) },
      },
    },
    failed: { type: 'final' },
  },
  output: ({ context }) => ({ device: context.device, error: { code: 'no_version', message: 'no eligible semver tag' } }),
});

/** The manager declares the real entry chart; the stand-in takes its place (its types differ). */
const standIn = fakeEntry as unknown as typeof firmwareEntryMachine;

function start(overrides: Partial<FirmwareInput> = {}) {
  const actor = createActor(firmwareMachine.provide({ actors: { entry: standIn } }), {
    input: { maxBytes: 1000, maxEntries: 3, freshnessMs: 60_000, retry: { minMs: 1000, maxMs: 60_000 }, jitterSeed: 1, ...overrides },
  });
  actor.start();
  const entries = () => Object.keys(actor.getSnapshot().children).sort();
  const entry = (device: string) => actor.getSnapshot().children[`firmware:${device}`]!;
  return { actor, entries, entry, context: () => actor.getSnapshot().context };
}

describe('firmware manager machine', () => {
  it('spawns one entry per device however many requests arrive, and forwards later ones to it', async () => {
    const t = start();
    for (let i = 0; i < 100; i++) t.actor.send({ type: 'firmware.request', device: 'esp32' });
    expect(t.entries()).toEqual(['firmware:esp32']);
    expect(received.esp32.filter((e) => e.type === 'firmware.request')).toHaveLength(99);
    t.actor.send({ type: 'firmware.refresh', device: 'esp32' });
    expect(received.esp32.at(-1)).toEqual({ type: 'firmware.refresh' });
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(true);
  });

  it('keeps the bytes held within maxBytes by stopping the least recently used entries', async () => {
    const t = start({ maxBytes: 1000, maxEntries: 10 });
    for (const device of ['a', 'b', 'c']) t.actor.send({ type: 'firmware.request', device });
    t.entry('a').send({ type: 'store', bytes: 400 });
    t.entry('b').send({ type: 'store', bytes: 400 });
    await flush();
    expect(t.context().bytes).toBe(800);
    t.actor.send({ type: 'firmware.touched', devices: ['a'] }); // a was served from memory since: b is older
    t.entry('c').send({ type: 'store', bytes: 400 });
    await flush();
    expect(t.entries()).toEqual(['firmware:a', 'firmware:c']);
    expect(t.context().bytes).toBe(800);
    expect(t.context().counters).toEqual({ entries: 2, bytes: 800, evicted: 1 });
    expect(t.context().records).toEqual([{ device: 'b', outcome: 'evicted', reason: 'cache full (least recently used)' }]);
  });

  it('bounds the number of entries too: a flood of ids never grows past maxEntries', async () => {
    const t = start({ maxEntries: 3 });
    for (let i = 0; i < 50; i++) t.actor.send({ type: 'firmware.request', device: `d${i}` });
    expect(t.entries()).toEqual(['firmware:d47', 'firmware:d48', 'firmware:d49']);
    expect(t.context().records.length).toBeLessThanOrEqual(100);
  });

  it('keeps entries without a build apart: a flood of unknown ids never evicts a build, and stays within maxNegativeEntries', async () => {
    const t = start({ maxEntries: 2, maxNegativeEntries: 3 });
    for (const device of ['a', 'b']) t.actor.send({ type: 'firmware.request', device });
    t.entry('a').send({ type: 'store', bytes: 10 });
    t.entry('b').send({ type: 'store', bytes: 10 });
    await flush();
    for (let i = 0; i < 50; i++) t.actor.send({ type: 'firmware.request', device: `u${i}` });
    expect(t.entries()).toEqual(['firmware:a', 'firmware:b', 'firmware:u47', 'firmware:u48', 'firmware:u49']);
    // A third build evicts the least recently used build, not an unknown id.
    t.entry('u49').send({ type: 'store', bytes: 10 });
    await flush();
    expect(t.entries()).toEqual(['firmware:b', 'firmware:u47', 'firmware:u48', 'firmware:u49']);
  });

  it('removes an entry that ended without a good build and records why', async () => {
    const t = start();
    t.actor.send({ type: 'firmware.request', device: 'ghost' });
    t.entry('ghost').send({ type: 'fail' });
    await flush();
    expect(t.entries()).toEqual([]);
    expect(t.context().entries).toEqual({});
    expect(t.context().records.at(-1)).toEqual({ device: 'ghost', outcome: 'failed', reason: 'no eligible semver tag' });
    // Asked again later: a new entry, a new try.
    t.actor.send({ type: 'firmware.request', device: 'ghost' });
    expect(t.entries()).toEqual(['firmware:ghost']);
  });

  it('a registry outage makes the concern degraded with a reason until an entry reaches it again or a probe answers', async () => {
    let probes = 0;
    let answer: (() => void) | undefined;
    const probe = fromPromise<void, void>(() => new Promise<void>((resolve) => (probes++, (answer = resolve))));
    const actor = createActor(firmwareMachine.provide({ actors: { entry: standIn, probeRegistry: probe } }), {
      input: { maxBytes: 1000, maxEntries: 3, freshnessMs: 60_000, retry: { minMs: 1, maxMs: 2 }, jitterSeed: 1 },
    });
    actor.start();
    const outage = { code: 'unreachable', message: 'GET 127.0.0.1/v2/: ECONNREFUSED' };
    actor.send({ type: 'firmware.registry', device: 'a', outage });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(false);
    expect(actor.getSnapshot().context.problem).toBe('registry unreachable (GET 127.0.0.1/v2/: ECONNREFUSED); serving the last good builds');
    actor.send({ type: 'firmware.request', device: 'a' }); // still served and managed
    expect(Object.keys(actor.getSnapshot().children)).toContain('firmware:a');
    actor.send({ type: 'firmware.registry', device: 'a', outage: null });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
    expect(actor.getSnapshot().context.problem).toBeNull();
    // no device asks: the probe sees the end
    actor.send({ type: 'firmware.registry', device: 'a', outage });
    await new Promise((r) => setTimeout(r, 20));
    expect(probes).toBe(1);
    answer!();
    await flush();
    expect(actor.getSnapshot().value).toBe('serving');
    expect(actor.getSnapshot().context.outage).toBeNull();
  });
});
