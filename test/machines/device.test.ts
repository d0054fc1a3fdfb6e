import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { deviceMachine, deviceStateName, type DeviceStateName } from '../../machines/device.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, fakePromise } from '../support/fakes.js';

function start() {
  const clock = new SimulatedClock();
  const open = fakePromise<void>();
  const stream = fakeCallback();
  const announced: DeviceStateName[] = [];
  const machine = deviceMachine.provide({
    actors: { openPort: open.logic, stream: stream.logic },
    actions: { announce: (_, params: { state: DeviceStateName }) => void announced.push(params.state) },
  });
  const errors: unknown[] = [];
  const actor = createActor(machine, { input: { id: 'usb-0403-6001-A1', path: '/dev/ttyUSB0', profile: 'ftdi-ft232r', retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 7 }, clock });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const state = () => deviceStateName(actor.getSnapshot().value);
  return { actor, clock, open, stream, announced, errors, state };
}

describe('device machine', () => {
  it('opens the port with its id, path and profile, streams, and announces every state', async () => {
    const t = start();
    await flush();
    expect(t.state()).toBe('opening');
    expect(t.open.calls).toBe(1);
    t.open.resolve();
    await flush();
    expect(t.state()).toBe('streaming');
    expect(t.stream.current.input).toEqual({ id: 'usb-0403-6001-A1', path: '/dev/ttyUSB0', profile: 'ftdi-ft232r' });
    expect(t.announced).toEqual(['detected', 'opening', 'streaming']);
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(true);
  });

  it('reconnects with growing, capped backoff when the port closes or will not open, and counts it', async () => {
    const t = start();
    await flush();
    t.open.resolve();
    await flush();
    t.stream.current.sendBack({ type: 'device.lost', error: { code: 'EIO', message: 'gone' } });
    await flush();
    expect(t.state()).toBe('reconnecting');
    expect(t.stream.liveCount).toBe(0); // the stream actor (and with it the port) is stopped
    const delays: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = t.open.calls;
      let waited = 0;
      while (t.open.calls === before && waited < 20_000) {
        await advance(t.clock, 50);
        waited += 50;
      }
      delays.push(waited);
      t.open.reject(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }));
      await flush();
    }
    // equal jitter: each delay in [ceiling/2, ceiling], ceiling doubling from 1 s to 8 s
    const ceilings = [1000, 2000, 4000, 8000, 8000, 8000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(ceilings[i] / 2);
      expect(d).toBeLessThanOrEqual(ceilings[i] + 50);
    });
    expect(t.actor.getSnapshot().context.reconnects).toBe(7);
    expect(t.actor.getSnapshot().context.lastError).toEqual({ code: 'ENOENT', message: 'ENOENT: no such file' });
    await advance(t.clock, 8000);
    t.open.resolve();
    await flush();
    expect(t.state()).toBe('streaming');
    expect(t.actor.getSnapshot().context.attempts).toBe(0); // the next failure starts from 1 s again
    expect(t.errors).toEqual([]);
  });

  it('is failing while only garbage arrives, keeps the port open, and streams again at the first good frame', async () => {
    const t = start();
    await flush();
    t.open.resolve();
    await flush();
    const stream = t.stream.current;
    stream.sendBack({ type: 'device.garbage' });
    await flush();
    expect(t.state()).toBe('failing');
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(false);
    expect(t.stream.liveCount).toBe(1);
    expect(t.stream.current).toBe(stream);
    stream.sendBack({ type: 'device.recovered' });
    await flush();
    expect(t.state()).toBe('streaming');
    expect(t.announced).toEqual(['detected', 'opening', 'streaming', 'failing', 'streaming']);
  });

  it('ends as gone on detach from any state, stopping the stream at once, with its outcome as output', async () => {
    for (const where of ['opening', 'streaming', 'failing', 'reconnecting'] as const) {
      const t = start();
      await flush();
      if (where !== 'opening') {
        t.open.resolve();
        await flush();
      }
      if (where === 'failing') t.stream.current.sendBack({ type: 'device.garbage' });
      if (where === 'reconnecting') t.stream.current.sendBack({ type: 'device.lost' });
      await flush();
      expect(t.state()).toBe(where);
      t.actor.send({ type: 'device.detach' });
      await flush();
      expect(t.actor.getSnapshot().status).toBe('done');
      expect(t.stream.liveCount).toBe(0);
      expect(t.announced.at(-1)).toBe('gone');
      expect(t.actor.getSnapshot().output).toEqual({
        id: 'usb-0403-6001-A1',
        profile: 'ftdi-ft232r',
        path: '/dev/ttyUSB0',
        reconnects: where === 'reconnecting' ? 1 : 0,
        lastError: null,
      });
    }
  });

  it('treats a crash of the stream actor as a lost port', async () => {
    const clock = new SimulatedClock();
    const machine = deviceMachine.provide({
      actors: {
        openPort: fromPromise(async () => {}),
        stream: fromCallback(() => {
          throw Object.assign(new Error('bad file descriptor'), { code: 'EBADF' });
        }),
      },
    });
    const actor = createActor(machine, { input: { id: 'x', path: '/dev/x', profile: 'p', retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 1 }, clock }).start();
    await flush();
    expect(deviceStateName(actor.getSnapshot().value)).toBe('reconnecting');
    expect(actor.getSnapshot().context.lastError).toEqual({ code: 'EBADF', message: 'bad file descriptor' });
    expect(actor.getSnapshot().status).toBe('active');
  });
});
