/**
 * The VM harness on its own, without the agent: the guest's kernel sees qemu's FTDI FT232 come
 * and go through QMP device_add/device_del, systemd-udevd reports it, /dev/ttyUSB0 carries what
 * the host writes into the chardev socket, and it all works again after a replug. A small probe
 * (scripts/vm/probe.mjs) reports from inside over TCP to the host's loopback.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildImage } from '../../scripts/vm/image.js';
import { waitFor } from '../support/ports.js';
import { Vm } from './vm.js';

let vm: Vm;
let server: Server;
const reports: string[] = [];

beforeAll(async () => {
  const image = buildImage({ log: (line) => console.log(`vm image: ${line}`) });
  server = createServer((socket) => createInterface({ input: socket }).on('line', (line) => reports.push(line)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  vm = await Vm.boot({ image, run: 'probe', params: { report: `10.0.2.2:${port}` }, chardevs: ['ftdi'] });
});

afterAll(async () => {
  await vm?.stop();
  server?.close();
});

const seen = (pattern: RegExp, from = 0) => reports.slice(from).findIndex((line) => pattern.test(line));
const waitReport = (pattern: RegExp, what: string, from = 0, timeoutMs = 30_000) =>
  waitFor(() => (seen(pattern, from) >= 0 ? true : undefined), what, timeoutMs).catch((error) => {
    throw new Error(`${error.message}\nreports: ${JSON.stringify(reports)}\n--- console ---\n${vm.consoleTail()}`);
  });

/** Writes numbered lines into the chardev until the probe reports one back; returns its number. */
async function roundTrip(serial: Socket, tag: string): Promise<void> {
  let n = 0;
  const timer = setInterval(() => serial.write(`${tag}-${++n}\n`), 100);
  try {
    await waitReport(new RegExp(`^line ${tag}-\\d+$`), `a ${tag} line through /dev/ttyUSB0`);
  } finally {
    clearInterval(timer);
  }
  // then a burst, every line of which must arrive whole and in order
  const from = reports.length;
  const burst = Array.from({ length: 20 }, (_, i) => `${tag}-burst-${i} ${'x'.repeat(i * 3)}`);
  serial.write(burst.map((line) => `${line}\n`).join(''));
  await waitReport(new RegExp(`^line ${tag}-burst-19 `), `the ${tag} burst`, from);
  expect(reports.slice(from).filter((line) => line.startsWith(`line ${tag}-burst-`))).toEqual(burst.map((line) => `line ${line}`));
}

test('an FTDI FT232 plugged, read, unplugged and plugged again inside the VM', async () => {
  await waitReport(/^hello node v\d+/, 'the probe saying hello from inside', 0, 90_000);
  const booted = Date.now() - vm.startedAt;
  const serial = await vm.chardev('ftdi');

  let from = reports.length;
  let t0 = Date.now();
  await vm.plugFtdi('ftdi0', 'ftdi');
  await waitReport(/^udev add ttyUSB0$/, 'udevd reporting ttyUSB0 added', from);
  await waitReport(/^open \/dev\/ttyUSB0$/, 'the probe opening /dev/ttyUSB0', from);
  const attached = Date.now() - t0;
  await roundTrip(serial, 'first');

  from = reports.length;
  t0 = Date.now();
  await vm.unplug('ftdi0');
  await waitReport(/^udev remove ttyUSB0$/, 'udevd reporting ttyUSB0 removed', from);
  await waitReport(/^closed \/dev\/ttyUSB0$/, 'the probe seeing the port close', from);
  const detached = Date.now() - t0;

  from = reports.length;
  t0 = Date.now();
  await vm.plugFtdi('ftdi0', 'ftdi');
  await waitReport(/^open \/dev\/ttyUSB0$/, 'the probe opening /dev/ttyUSB0 again', from);
  const reattached = Date.now() - t0;
  await roundTrip(serial, 'again');

  const boot = /ev-init: ready after ([\d.]+) s/.exec(vm.consoleText)?.[1];
  console.log(
    `vm probe (information only): qemu start to probe ${booted} ms (guest init ready at ${boot} s uptime); ` +
      `device_add to open ${attached} ms, device_del to closed ${detached} ms, replug to open ${reattached} ms`,
  );
  serial.destroy();
});
