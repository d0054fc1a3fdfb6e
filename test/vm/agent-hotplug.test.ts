/**
 * Hotplug, really: the built agent runs inside a Linux VM (stock Debian kernel, systemd-udevd)
 * and qemu's emulated FTDI FT232 (0403:6001) is plugged and unplugged through QMP. The agent
 * must find it, open /dev/ttyUSB0 with the shipped ftdi-ft232r profile, publish the lines the host
 * writes into the device, mark it gone on unplug and resume on replug, running as its own user
 * (not root, not in dialout) with deploy/'s udev rule installed. Readings and states are
 * checked where a user sees them: on a real mosquitto on the host's loopback, which the guest
 * reaches at 10.0.2.2.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildImage, type Image } from '../../scripts/vm/image.js';
import { Mosquitto } from '../support/mosquitto.js';
import { subscriber, type Received } from '../support/mqtt.js';
import { waitFor } from '../support/ports.js';
import { Vm } from './vm.js';

let broker: Mosquitto;
let image: Image;
beforeAll(async () => {
  broker = await Mosquitto.start();
  image = buildImage({ agent: true, log: (line) => console.log(`vm image: ${line}`) });
});
afterAll(async () => {
  await broker?.stop();
});

/** True when some string field of the JSON value (at any depth) is exactly `text`. */
function carries(value: unknown, text: string): boolean {
  if (value === text) return true;
  if (value && typeof value === 'object') return Object.values(value).some((v) => carries(v, text));
  return false;
}

const json = (message: Received) => {
  try {
    return JSON.parse(message.payload);
  } catch {
    return undefined;
  }
};

describe.each([
  // the usb package's attach/detach events, which need systemd-udevd; the device is plugged after the agent is up
  { hotplug: 'auto', plugBeforeStart: false },
  // the sysfs polling fallback; the device is already there when the agent starts
  { hotplug: 'sysfs', plugBeforeStart: true },
])('the agent in a VM, devices.hotplug $hotplug', ({ hotplug, plugBeforeStart }) => {
  const thing = `vm-${hotplug}`; // one per boot: nothing retained by the other one is seen
  let vm: Vm;
  let serial: Socket;
  let mqtt: Awaited<ReturnType<typeof subscriber>>;
  const messages = () => mqtt.messages;

  beforeAll(async () => {
    mqtt = await subscriber(broker.url, `devices/${thing}/#`);
    vm = await Vm.boot({
      image,
      run: 'agent',
      chardevs: ['ftdi'],
      name: `agent-${hotplug}`,
      // not root: the agent opens /dev/ttyUSB0 only because deploy/99-edgevisor.rules gives its group the tty
      user: 'edgevisor',
      config: {
        thingName: thing,
        stateDir: '/var/lib/edgevisor',
        mqtt: { url: `mqtt://10.0.2.2:${broker.port}`, reconnectMaxSeconds: 2 },
        devices: { enabled: true, hotplug },
      },
    });
  });
  afterAll(async () => {
    serial?.destroy();
    await vm?.stop();
    await mqtt?.close();
  });

  const fail = (error: Error): never => {
    throw new Error(`${error.message}\nmqtt: ${JSON.stringify(messages().slice(-20))}\n--- console ---\n${vm.consoleTail(80)}`);
  };
  const stateTopic = new RegExp(`^devices/${thing}/peripherals/([^/]+)/state$`);
  /** The next `.../state` message (after index `from`) with this state; returns the peripheral id. */
  const waitState = (state: string, from: number, timeoutMs = 60_000) =>
    waitFor(
      () => {
        for (const message of messages().slice(from)) {
          const id = stateTopic.exec(message.topic)?.[1];
          if (id && json(message)?.state === state) return id;
        }
        return undefined;
      },
      `peripheral state ${state}`,
      timeoutMs,
    ).catch(fail);
  const data = (id: string, from = 0) =>
    messages()
      .slice(from)
      .filter((m) => m.topic === `devices/${thing}/peripherals/${id}/data`)
      .map(json);

  /** Writes numbered lines until one comes back on MQTT, then a burst whose every line must arrive, in order. */
  async function linesFlow(id: string, tag: string): Promise<void> {
    let n = 0;
    const timer = setInterval(() => serial.write(`${tag}-${++n}\n`), 200);
    try {
      await waitFor(
        () => data(id).some((payload) => Array.from({ length: n }, (_, i) => `${tag}-${i + 1}`).some((line) => carries(payload, line))),
        `a ${tag} line on MQTT`,
        30_000,
      ).catch(fail);
    } finally {
      clearInterval(timer);
    }
    const from = messages().length;
    const burst = Array.from({ length: 20 }, (_, i) => `${tag} burst ${i} ${'#'.repeat(i * 2)}`);
    serial.write(burst.map((line) => `${line}\n`).join(''));
    await waitFor(() => data(id, from).some((p) => carries(p, burst[19])), `the ${tag} burst on MQTT`, 30_000).catch(fail);
    const got = data(id, from).flatMap((payload) => burst.filter((line) => carries(payload, line)));
    expect(got).toEqual(burst);
  }

  test('detects the FTDI FT232, publishes its lines, marks it gone on unplug and resumes on replug', async () => {
    serial = await vm.chardev('ftdi');
    // a USB device that is no serial peripheral (a keyboard) sits in another port all along: it must be left alone
    await vm.plugUsb('usb-kbd', 'kbd0', '2');
    let t0 = Date.now();
    if (plugBeforeStart) await vm.plugFtdi('ftdi0', 'ftdi');
    await waitFor(() => messages().find((m) => m.topic === `devices/${thing}/status` && m.payload.includes('online')), 'the agent online', 120_000).catch(fail);
    const online = Date.now() - vm.startedAt;

    let from = messages().length;
    if (!plugBeforeStart) {
      t0 = Date.now();
      await vm.plugFtdi('ftdi0', 'ftdi');
    } else from = 0;
    const id = await waitState('streaming', from);
    const attached = Date.now() - t0;
    if (hotplug === 'auto') {
      // with systemd-udevd running, auto must mean the usb package's hotplug, not the polling fallback
      const source = vm.consoleText.match(/"source":"([^"]*)"[^\n]*"msg":"watching for devices"/)?.[1];
      expect(source).toMatch(/^usb hotplug/);
    }
    await linesFlow(id, 'first');

    // pulled out mid-stream, as a technician would: the lines keep coming until the cable is gone
    from = messages().length;
    let n = 0;
    const writing = setInterval(() => serial.write(`unplugging-${++n}\n`), 20);
    t0 = Date.now();
    try {
      await vm.unplug('ftdi0');
      expect(await waitState('gone', from)).toBe(id);
    } finally {
      clearInterval(writing);
    }
    const gone = Date.now() - t0;

    from = messages().length;
    t0 = Date.now();
    await vm.plugFtdi('ftdi0', 'ftdi');
    expect(await waitState('streaming', from)).toBe(id); // the same device in the same port, known again
    const replugged = Date.now() - t0;
    await linesFlow(id, 'again');

    const stateMessages = messages().filter((m) => m.topic === `devices/${thing}/peripherals/${id}/state`);
    expect(stateMessages.length).toBeGreaterThanOrEqual(3);
    // one serial device was plugged: nothing else (the keyboard, a half-removed one read mid-unplug) may be announced
    const peripherals = new Set(messages().flatMap((m) => /\/peripherals\/([^/]+)\//.exec(m.topic)?.[1] ?? []));
    expect([...peripherals]).toEqual([id]);
    console.log(
      `vm agent, hotplug ${hotplug} (information only): qemu start to agent online ${online} ms; ` +
        `${plugBeforeStart ? 'plugged at boot, qemu start' : 'device_add'} to streaming ${attached} ms, ` +
        `device_del to gone ${gone} ms, replug to streaming ${replugged} ms`,
    );
  });
});
