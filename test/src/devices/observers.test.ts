import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { deviceMachine } from '../../../machines/device.js';
import { devicesMachine, type PresentDevice } from '../../../machines/devices.js';
import { DeviceAnnouncer } from '../../../src/devices/announcer.js';
import { refusalLog } from '../../../src/devices/refusal-log.js';
import { createLogger } from '../../../src/log.js';
import { ActorChanges } from '../../../src/observe.js';
import { Slot } from '../../../src/slot.js';
import { flush } from '../../support/clock.js';
import { fakeCallback } from '../../support/fakes.js';

const usb = (id: string): PresentDevice => ({ id, path: `/dev/${id}`, profile: 'ftdi-ft232r', source: 'usb', at: 1 });

/** The devices and device charts (fake hotplug and port), watched as src/ watches them. */
function start(maxDevices: number) {
  const port = fakeCallback();
  const hotplug = fakeCallback();
  const machine = devicesMachine.provide({
    actors: { hotplug: hotplug.logic, commands: fakeCallback().logic, device: deviceMachine.provide({ actors: { port: port.logic } }) },
  });
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const sent: Array<{ device: string; topic: string; body: Record<string, unknown> }> = [];
  const announcer = new DeviceAnnouncer({
    thingName: 'box',
    enqueue: (device, topic, body) => void sent.push({ device, topic, body }),
    session: new Slot<MqttClient>(),
    log,
    now: () => 42,
  });
  const changes = new ActorChanges();
  changes.subscribe(announcer.follow);
  changes.subscribe(refusalLog(log));
  const actor = createActor(machine, { id: 'devices', input: { maxDevices, retry: { minMs: 1000, maxMs: 8000 }, jitterSeed: 1 }, inspect: changes.inspect });
  actor.start();
  const send = async (event: Parameters<typeof hotplug.current.sendBack>[0]) => {
    hotplug.current.sendBack(event);
    await flush();
  };
  const fromPort = async (event: Parameters<typeof port.current.sendBack>[0]) => {
    port.current.sendBack(event);
    await flush();
  };
  const states = (device: string) => sent.filter((s) => s.device === device).map((s) => s.body.state);
  return { actor, announcer, send, fromPort, sent, states, refusals: () => lines.filter((l) => l.msg === 'device refused: not opened') };
}

describe('device observers (state announcements and refusals, from the snapshots)', () => {
  it('announce every state a device goes through, retained on its state topic, detected first and gone last', async () => {
    const t = start(4);
    await t.send({ type: 'devices.attached', device: usb('a') });
    await t.fromPort({ type: 'port.opened' });
    await t.fromPort({ type: 'device.garbage' });
    await t.fromPort({ type: 'device.recovered' });
    await t.fromPort({ type: 'device.lost', error: { code: 'EIO', message: 'unplugged?' } });
    await t.send({ type: 'devices.detached', id: 'a', at: 2 });
    expect(t.states('a')).toEqual(['detected', 'opening', 'streaming', 'failing', 'streaming', 'reconnecting', 'gone']);
    expect(t.sent[0]).toMatchObject({
      topic: 'devices/box/peripherals/a/state',
      body: { state: 'detected', id: 'a', path: '/dev/a', profile: 'ftdi-ft232r', reconnects: 0, ts: 42 },
    });
    expect(t.sent.find((s) => s.body.state === 'reconnecting')?.body).toMatchObject({ reconnects: 1, error: 'unplugged?' });
    // gone is the last word: nothing more for it when the concern stops
    t.announcer.stopped();
    expect(t.states('a').at(-1)).toBe('gone');
    t.actor.stop();
  });

  it('a device still present when the concern stops gets a final stopped', async () => {
    const t = start(4);
    await t.send({ type: 'devices.attached', device: usb('a') });
    await t.fromPort({ type: 'port.opened' });
    t.announcer.stopped();
    expect(t.states('a')).toEqual(['detected', 'opening', 'streaming', 'stopped']);
    t.announcer.stopped(); // once only
    expect(t.states('a')).toHaveLength(4);
    t.actor.stop();
  });

  it('log each refused device once, and nothing for events that refuse nothing', async () => {
    const t = start(1);
    await t.send({ type: 'devices.attached', device: usb('a') });
    await t.send({ type: 'devices.attached', device: usb('b') });
    await t.send({ type: 'devices.source', source: 'sysfs polling', problem: null });
    await t.send({ type: 'devices.attached', device: usb('c') });
    expect(t.refusals()).toMatchObject([
      { device: 'b', path: '/dev/b', reason: 'more than 1 devices' },
      { device: 'c', path: '/dev/c', reason: 'more than 1 devices' },
    ]);
    expect(t.states('b')).toEqual([]); // a refused device is never announced
    t.actor.stop();
  });
});
