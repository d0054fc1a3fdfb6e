import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { deviceMachine, deviceStateName, type DeviceEmitted, type DeviceStateName } from '../../machines/device.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback } from '../support/fakes.js';

function start() {
  const clock = new SimulatedClock();
  const port = fakeCallback();
  const machine = deviceMachine.provide({ actors: { port: port.logic } });
  const errors: unknown[] = [];
  const actor = createActor(machine, {
    input: { id: 'usb-0403-6001-A1', path: '/dev/ttyUSB0', profile: 'ftdi-ft232r', retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 7 },
    clock,
  });
  // the state names an observer of the snapshots sees, as src/'s announcer does
  const announced: DeviceStateName[] = [];
  actor.subscribe({
    next: (snapshot) => {
      const name = deviceStateName(snapshot.value);
      if (announced.at(-1) !== name) announced.push(name);
    },
    error: (e) => errors.push(e),
  });
  const results: DeviceEmitted[] = [];
  actor.on('device.write.result', (e) => void results.push(e));
  actor.start();
  const state = () => deviceStateName(actor.getSnapshot().value);
  /** the port actor says the port is open */
  const opened = async () => {
    port.current.sendBack({ type: 'port.opened' });
    await flush();
  };
  return { actor, clock, port, opened, announced, errors, results, state };
}

describe('device machine', () => {
  it('opens the port with its id, path and profile, streams, and announces every state', async () => {
    const t = start();
    await flush();
    expect(t.state()).toBe('opening');
    expect(t.port.stats.started).toBe(1);
    expect(t.port.current.input).toEqual({ id: 'usb-0403-6001-A1', path: '/dev/ttyUSB0', profile: 'ftdi-ft232r' });
    await t.opened();
    expect(t.state()).toBe('streaming');
    expect(t.port.liveCount).toBe(1); // one actor opened the port and streams from it
    expect(t.announced).toEqual(['opening', 'streaming']); // `detected` passes within the first step
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(true);
  });

  it('reconnects with growing, capped backoff when the port closes or will not open, and counts it', async () => {
    const t = start();
    await flush();
    await t.opened();
    t.port.current.sendBack({ type: 'device.lost', error: { code: 'EIO', message: 'gone' } });
    await flush();
    expect(t.state()).toBe('reconnecting');
    expect(t.port.liveCount).toBe(0); // the port actor (and with it the port) is stopped
    const delays: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = t.port.stats.started;
      let waited = 0;
      while (t.port.stats.started === before && waited < 20_000) {
        await advance(t.clock, 50);
        waited += 50;
      }
      delays.push(waited);
      t.port.current.sendBack({ type: 'device.lost', error: { code: 'ENOENT', message: 'ENOENT: no such file' } });
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
    await t.opened();
    expect(t.state()).toBe('streaming');
    expect(t.actor.getSnapshot().context.attempts).toBe(0); // the next failure starts from 1 s again
    expect(t.errors).toEqual([]);
  });

  it('is failing while only garbage arrives, keeps the port open, and streams again at the first good frame', async () => {
    const t = start();
    await flush();
    await t.opened();
    const stream = t.port.current;
    stream.sendBack({ type: 'device.garbage' });
    await flush();
    expect(t.state()).toBe('failing');
    expect(t.actor.getSnapshot().hasTag('healthy')).toBe(false);
    expect(t.port.liveCount).toBe(1);
    expect(t.port.current).toBe(stream);
    stream.sendBack({ type: 'device.recovered' });
    await flush();
    expect(t.state()).toBe('streaming');
    expect(t.announced).toEqual(['opening', 'streaming', 'failing', 'streaming']);
  });

  it('ends as gone on detach from any state, stopping the stream at once, with its outcome as output', async () => {
    for (const where of ['opening', 'streaming', 'failing', 'reconnecting'] as const) {
      const t = start();
      await flush();
      if (where !== 'opening') await t.opened();
      if (where === 'failing') t.port.current.sendBack({ type: 'device.garbage' });
      if (where === 'reconnecting') t.port.current.sendBack({ type: 'device.lost' });
      await flush();
      expect(t.state()).toBe(where);
      t.actor.send({ type: 'device.detach' });
      await flush();
      expect(t.actor.getSnapshot().status).toBe('done');
      expect(t.port.liveCount).toBe(0);
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

  it('treats a crash of the port actor as a lost port', async () => {
    const clock = new SimulatedClock();
    const machine = deviceMachine.provide({
      actors: {
        port: fromCallback(() => {
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

  it('writes go to the port actor one at a time while the port is open; each gets one answer', async () => {
    const t = start();
    await flush();
    t.actor.send({ type: 'device.write', requestId: 'w0', data: 'LED ON\n' });
    await flush();
    expect(t.results).toEqual([{ type: 'device.write.result', requestId: 'w0', accepted: false, reason: 'not_open', message: 'the port is not open' }]);
    expect(t.port.current.received).toEqual([]); // refused, not queued for later
    await t.opened();
    t.actor.send({ type: 'device.write', requestId: 'w1', data: 'LED ON\n' });
    t.actor.send({ type: 'device.write', requestId: 'w2', data: 'LED OFF\n' });
    await flush();
    expect(t.port.current.received).toEqual([{ type: 'port.write', requestId: 'w1', data: 'LED ON\n' }]);
    expect(t.results.at(-1)).toEqual({
      type: 'device.write.result',
      requestId: 'w2',
      accepted: false,
      reason: 'busy',
      message: 'a write to this port is in progress',
    });
    t.port.current.sendBack({ type: 'port.written', requestId: 'w1', accepted: true, bytes: 7 });
    await flush();
    expect(t.results.at(-1)).toEqual({ type: 'device.write.result', requestId: 'w1', accepted: true, bytes: 7 });
    t.port.current.sendBack({ type: 'device.garbage' }); // failing is still open: writes go on
    t.actor.send({ type: 'device.write', requestId: 'w3', data: 'X\n' });
    await flush();
    expect(t.port.current.received.at(-1)).toEqual({ type: 'port.write', requestId: 'w3', data: 'X\n' });
    t.port.current.sendBack({ type: 'port.written', requestId: 'w3', accepted: false, reason: 'rate_limited', message: 'more than 1 writes per second' });
    await flush();
    expect(t.results.at(-1)).toMatchObject({ requestId: 'w3', accepted: false, reason: 'rate_limited' });
    expect(t.actor.getSnapshot().context.writing).toBeNull();
    expect(t.errors).toEqual([]);
  });

  it('a write in flight when the port closes or the device goes is answered port_closed; then writes are refused', async () => {
    for (const end of ['lost', 'detach'] as const) {
      const t = start();
      await flush();
      await t.opened();
      t.actor.send({ type: 'device.write', requestId: 'w1', data: 'A\n' });
      await flush();
      if (end === 'lost') t.port.current.sendBack({ type: 'device.lost' });
      else t.actor.send({ type: 'device.detach' });
      await flush();
      expect(t.results).toEqual([
        { type: 'device.write.result', requestId: 'w1', accepted: false, reason: 'port_closed', message: 'the port closed before the write finished' },
      ]);
      if (end === 'lost') {
        expect(t.state()).toBe('reconnecting');
        t.actor.send({ type: 'device.write', requestId: 'w2', data: 'B\n' });
        await flush();
        expect(t.results.at(-1)).toMatchObject({ requestId: 'w2', accepted: false, reason: 'not_open' });
        expect(t.actor.getSnapshot().context.writing).toBeNull();
      }
    }
  });
});
