// A stand-in for the agent inside the test VM: proves node, the network to the host, udevd's
// events and the USB-serial tty on their own. It reports one line per event to the host over
// TCP (ev.report=HOST:PORT on the kernel command line) and on the console.
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const arg = (name) =>
  readFileSync('/proc/cmdline', 'utf8')
    .split(/\s+/)
    .find((a) => a.startsWith(`ev.${name}=`))
    ?.slice(name.length + 4);
const [host, port] = arg('report').split(':');
const device = arg('tty') ?? '/dev/ttyUSB0';
const socket = connect(Number(port), host);
const report = (line) => {
  console.log(`probe: ${line}`);
  socket.write(`${line}\n`);
};
socket.on('error', (error) => console.log(`probe: report socket: ${error.message}`));
report(`hello node ${process.version}`);

// udevd's view: the events the usb package's hotplug would see
const monitor = spawn('udevadm', ['monitor', '--udev', '--subsystem-match=tty'], { stdio: ['ignore', 'pipe', 'inherit'] });
createInterface({ input: monitor.stdout }).on('line', (line) => {
  const event = /^UDEV\s+\[[\d.]+\]\s+(\w+)\s+(\S+)/.exec(line);
  if (event && event[2].includes('ttyUSB')) report(`udev ${event[1]} ${event[2].split('/').pop()}`);
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
for (;;) {
  while (!existsSync(device)) await sleep(50);
  try {
    execFileSync('stty', ['-F', device, '9600', 'raw', '-echo']);
  } catch (error) {
    report(`stty failed ${error.message}`);
    await sleep(200);
    continue;
  }
  report(`open ${device}`);
  const stream = createReadStream(device);
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on('line', (text) => report(`line ${text}`));
  await new Promise((resolve) => {
    stream.once('error', (error) => (report(`error ${error.code}`), resolve()));
    stream.once('close', resolve);
  });
  report(`closed ${device}`);
  while (existsSync(device)) await sleep(50);
}
