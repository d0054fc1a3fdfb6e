import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor, createMachine, fromCallback, SimulatedClock, type AnyEventObject } from 'xstate';
import type { DeviceInput, deviceMachine } from '../../machines/device.js';
import { devicesMachine, type PresentDevice } from '../../machines/devices.js';
import { flush } from '../support/clock.js';
import { fakeCallback } from '../support/fakes.js';

/** A stand-in device chart: ends as gone on detach, like the real one. Its invoked "port"
 * counts live instances: its cleanup runs however the device ends (gone, or stopped). */
const ports = fakeCallback();
const fakeDevice = createMachine({
  types: {} as { input: DeviceInput; context: DeviceInput },
  context: ({ input }) => input,
  initial: 'streaming',
  states: {
    streaming: { invoke: { src: ports.logic }, on: { 'device.detach': 'gone' } },
    gone: { type: 'final' },
  },
  output: ({ context }) => ({ id: context.id, spawn: context.spawn, profile: context.profile, path: context.path, reconnects: 2, lastError: null }),
});
/** The manager declares the real device chart; the stand-in takes its place (its types differ). */
const standIn = fakeDevice as unknown as typeof deviceMachine;

/** A stand-in with a bug: an action that throws errors the actor (no port: an errored actor's
 * own children are not stopped by xstate, and would count as live ports here). */
const buggyDevice = createMachine({
  types: {} as { input: DeviceInput; context: DeviceInput },
  context: ({ input }) => input,
  initial: 'streaming',
  states: {
    streaming: { on: { 'test.bug': 'broken' } },
    broken: {
      entry: () => {
        throw Object.assign(new Error('bug in the chart'), { code: 'EBUG' });
      },
    },
  },
}) as unknown as typeof deviceMachine;

const usb = (id: string, profile: string | null = 'ftdi-ft232r', path = `/dev/${id}`): PresentDevice => ({
  id,
  path,
  profile,
  source: 'usb',
  vendorId: '0403',
  productId: '6001',
  at: 1,
});

const liveDevices = () => ports.liveCount;
const running: Array<{ stop(): void }> = [];
afterEach(() => {
  while (running.length) running.pop()!.stop();
});

function start(maxDevices = 4, maxRecords?: number, device = standIn) {
  const hotplug = fakeCallback();
  const machine = devicesMachine.provide({ actors: { hotplug: hotplug.logic, commands: fakeCallback().logic, device } });
  const errors: unknown[] = [];
  const actor = createActor(machine, { input: { maxDevices, retry: { minMs: 500, maxMs: 30_000 }, jitterSeed: 3, maxRecords }, clock: new SimulatedClock() });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  running.push(actor);
  const send = (event: AnyEventObject) => hotplug.current.sendBack(event);
  const children = () =>
    Object.keys(actor.getSnapshot().children)
      .filter((id) => id.startsWith('device:'))
      .sort();
  return { actor, hotplug, send, children, errors, ctx: () => actor.getSnapshot().context };
}

describe('devices machine', () => {
  it('spawns a device:<id> actor for a matched device, with its path, profile and backoff', async () => {
    const t = start();
    t.send({ type: 'devices.source', source: 'sysfs polling', problem: null });
    t.send({ type: 'devices.attached', device: usb('usb-0403-6001-A1') });
    await flush();
    expect(t.children()).toEqual(['device:usb-0403-6001-A1']);
    const child = t.actor.getSnapshot().children['device:usb-0403-6001-A1']!;
    expect((child.getSnapshot() as { context: DeviceInput }).context).toMatchObject({
      id: 'usb-0403-6001-A1',
      path: '/dev/usb-0403-6001-A1',
      profile: 'ftdi-ft232r',
      retry: { minMs: 500, maxMs: 30_000 },
    });
    expect(t.ctx().source).toBe('sysfs polling');
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(true);
  });

  it('keeps a device no profile matches as present, without an actor', async () => {
    const t = start();
    t.send({ type: 'devices.attached', device: usb('usb-1234-5678-X', null) });
    await flush();
    expect(t.children()).toEqual([]);
    expect(Object.keys(t.ctx().present)).toEqual(['usb-1234-5678-X']);
  });

  it('on detach the device goes gone, is stopped and leaves a record, not an actor', async () => {
    const t = start();
    t.send({ type: 'devices.attached', device: usb('a') });
    await flush();
    expect(liveDevices()).toBe(1);
    t.send({ type: 'devices.detached', id: 'a', at: 2 });
    await flush();
    expect(t.children()).toEqual([]);
    expect(liveDevices()).toBe(0);
    expect(t.ctx().present).toEqual({});
    expect(t.ctx().records).toEqual([{ id: 'a', profile: 'ftdi-ft232r', path: '/dev/a', outcome: 'gone', reconnects: 2, lastError: null, at: 0 }]);
  });

  it('refuses devices beyond maxDevices and records why; a freed slot goes to a refused device still present', async () => {
    const t = start(2);
    for (const id of ['a', 'b', 'c', 'd']) t.send({ type: 'devices.attached', device: usb(id) });
    await flush();
    expect(t.children()).toEqual(['device:a', 'device:b']);
    expect(t.ctx().refused).toBe(2);
    expect(t.ctx().records).toMatchObject([
      { id: 'c', outcome: 'refused', lastError: { code: 'max_devices' } },
      { id: 'd', outcome: 'refused' },
    ]);
    t.send({ type: 'devices.detached', id: 'c', at: 3 }); // a refused one leaves: nothing to free
    t.send({ type: 'devices.detached', id: 'a', at: 3 });
    await flush();
    expect(t.children()).toEqual(['device:b', 'device:d']);
    expect(liveDevices()).toBe(2);
    t.send({ type: 'devices.attached', device: usb('e') });
    await flush();
    expect(t.children()).toEqual(['device:b', 'device:d']);
  });

  it('restarts a device whose profile or port changed, and leaves a repeated attach alone', async () => {
    const t = start();
    t.send({ type: 'devices.attached', device: usb('a') });
    await flush();
    const first = t.actor.getSnapshot().children['device:a'];
    t.send({ type: 'devices.attached', device: usb('a') });
    await flush();
    expect(t.actor.getSnapshot().children['device:a']).toBe(first);
    t.send({ type: 'devices.attached', device: usb('a', 'arduino-ch340') });
    await flush();
    const second = t.actor.getSnapshot().children['device:a']!;
    expect(second).not.toBe(first);
    expect((second.getSnapshot() as { context: DeviceInput }).context.profile).toBe('arduino-ch340');
    expect(t.ctx().live).toEqual({ a: 1 }); // the second spawn of device:a is the live one
    expect(liveDevices()).toBe(1);
    t.send({ type: 'devices.attached', device: usb('a', null) }); // its profile was deleted
    await flush();
    expect(t.children()).toEqual([]);
    expect(liveDevices()).toBe(0);
  });

  it('a detach and a re-attach in a row leave exactly one live device', async () => {
    const t = start();
    t.send({ type: 'devices.attached', device: usb('a') });
    await flush();
    t.send({ type: 'devices.detached', id: 'a', at: 2 });
    t.send({ type: 'devices.attached', device: usb('a') });
    await flush();
    expect(t.children()).toEqual(['device:a']);
    expect(liveDevices()).toBe(1);
    expect(t.actor.getSnapshot().children['device:a']!.getSnapshot().status).toBe('active');
  });

  it('a device actor that crashes is recorded as crashed with its error, stopped, and its slot freed', async () => {
    const t = start(1, undefined, buggyDevice);
    t.send({ type: 'devices.attached', device: usb('a') });
    t.send({ type: 'devices.attached', device: usb('b') }); // refused: no slot
    await flush();
    t.actor.getSnapshot().children['device:a']!.send({ type: 'test.bug' });
    await flush();
    expect(t.ctx().records.find((r) => r.id === 'a')).toMatchObject({ outcome: 'crashed', lastError: { code: 'EBUG', message: 'bug in the chart' } });
    expect(t.children()).toEqual(['device:b']); // the freed slot went to b
    expect(t.ctx().live).toEqual({ b: 1 });
    expect(t.errors).toEqual([]);
  });

  it('a broken hotplug source ends the concern (the supervisor restarts it)', async () => {
    const machine = devicesMachine.provide({
      actors: {
        hotplug: fromCallback(() => {
          throw new Error('inotify limit reached');
        }),
        commands: fakeCallback().logic,
        device: standIn,
      },
    });
    const actor = createActor(machine, { input: { maxDevices: 1, retry: { minMs: 1, maxMs: 2 }, jitterSeed: 1 } }).start();
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().context.lastError?.message).toBe('inotify limit reached');
  });

  it('soak: 1,000 attach/detach cycles leave no actors, listeners or memory behind', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const t = start(8, 50);
    const observers = () => (t.actor as unknown as { observers: Set<unknown> }).observers?.size ?? 0;
    const cycle = async (i: number) => {
      const id = `usb-0403-6001-S${i % 16}`;
      t.send({ type: 'devices.attached', device: usb(id) });
      t.send({ type: 'devices.attached', device: usb(`other-${i % 3}`) });
      await flush();
      t.send({ type: 'devices.detached', id, at: i });
      t.send({ type: 'devices.detached', id: `other-${i % 3}`, at: i });
      await flush();
    };
    for (let i = 0; i < 100; i++) await cycle(i); // warm up: records fill, code paths compile
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const observersBefore = observers();
    for (let i = 100; i < 1100; i++) await cycle(i);
    gc();
    const heapAfter = process.memoryUsage().heapUsed;
    expect(t.children()).toEqual([]);
    expect(liveDevices()).toBe(0);
    expect(t.hotplug.liveCount).toBe(1);
    expect(observers()).toBe(observersBefore);
    expect(Object.keys(t.ctx().present)).toEqual([]);
    expect(t.ctx().records.length).toBeLessThanOrEqual(50);
    expect(t.ctx().spawned).toBe(2200);
    // 1,000 cycles of ~10 KB of garbage each would be ~10 MB; retained growth must be far below
    expect(heapAfter - heapBefore).toBeLessThan(2 * 1024 * 1024);
    expect(t.errors).toEqual([]);
  });
});
