/**
 * The agent under its shipped systemd unit, really: Debian's systemd boots as PID 1 in a VM
 * (scripts/vm/image.ts --systemd), the release is installed with scripts/install.sh as an
 * operator would (it creates the user, installs deploy/edgevisor.service, enables and starts it),
 * and everything is checked from the host, through the host's mosquitto (the guest reaches it
 * at 10.0.2.2) and vmctl (a root shell channel in the guest): Type=notify READY=1 and the
 * watchdog, a job, a publish through the HTTP API, the outbox across a restart with the broker
 * down, host monitoring under ProtectProc=invisible, MemoryMax, the exposure rating, and a clean
 * stop. The tests run in order on one boot: each picks up where the one before left the agent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { LocalJobsService } from '../../scripts/jobs-service.js';
import { buildImage } from '../../scripts/vm/image.js';
import { Mosquitto } from '../support/mosquitto.js';
import { subscriber } from '../support/mqtt.js';
import { persistentSubscriber } from '../support/persistent-subscriber.js';
import { waitFor } from '../support/ports.js';
import { Vm } from './vm.js';
import { Guest, VMCTL_PORT } from './vmctl.js';

const shipped = readFileSync(join(import.meta.dirname, '../../deploy/edgevisor.service'), 'utf8');
const unitSetting = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(shipped)?.[1];
const UNIT = 'edgevisor.service';
const HTTP_PORT = 8080;
const thing = `vm-systemd-${process.pid}`;

let broker: Mosquitto;
let jobs: LocalJobsService;
let vm: Vm;
let guest: Guest;
let mqtt: Awaited<ReturnType<typeof subscriber>>;
/** where the guest holds the unpacked release */
let release: string;
let failed = false;
/** The tests build on each other: once the agent is not installed and active, the rest stop at once. */
let installed = false;
const needsAgent = () => {
  if (!installed) throw new Error('the agent was not installed and started (see the first test)');
};

beforeAll(async () => {
  // persistent: the outbox test stops and starts it; a persistent subscriber keeps its session
  broker = await Mosquitto.start({ persistent: true });
  jobs = await LocalJobsService.start(broker.url);
  mqtt = await subscriber(broker.url, `devices/${thing}/#`);
  const image = buildImage({ systemd: true, log: (line) => console.log(`vm image: ${line}`) });
  vm = await Vm.boot({ image, run: 'systemd', name: 'systemd-unit', memoryMb: 1536, forward: [VMCTL_PORT], chardevs: ['ftdi'] });
  guest = await Guest.connect(vm, 180_000).catch(fail);
  console.log(`vm systemd (information only): qemu start to vmctl answering (multi-user.target) ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s`);
  release = image.release!;
}, 300_000);

// any failed test keeps the whole serial console as an artefact
beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));
afterAll(async () => {
  await vm?.stop({ failed });
  await mqtt?.close();
  await jobs?.stop();
  await broker?.stop();
});

/** A failure carries the guest's state and the end of its serial console (journald forwards there). */
function fail(error: Error): never {
  failed = true;
  throw new Error(`${error.message}\n--- serial console (journal) ---\n${vm?.consoleTail(100)}`);
}
const step = <T>(promise: Promise<T>) => promise.catch(fail);

const messagesOn = (suffix: string) => mqtt.messages.filter((m) => m.topic === `devices/${thing}/${suffix}`);

/** Publishes through the agent's HTTP API, from inside the guest (it listens on the guest's loopback). */
async function publishThroughApi(topic: string, payload: string): Promise<number> {
  const body = JSON.stringify(JSON.stringify({ topic, payload, qos: 1 }));
  const script = `const r = await fetch('http://127.0.0.1:${HTTP_PORT}/api/v1/publish', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${body} });
console.log(r.status, await r.text());`;
  // the script comes on stdin: no shell quoting of what it carries
  const out = await guest.ok('node --input-type=module -e "$(cat)"', { input: script });
  return Number(out.split(' ')[0]);
}

const waitActive = (what: string) =>
  waitFor(async () => ((await guest.run(`systemctl is-active ${UNIT}`)).stdout.trim() === 'active' ? true : undefined), what, 120_000);

describe('the agent under deploy/edgevisor.service, systemd 252 as PID 1', () => {
  let activePid: string;

  test('scripts/install.sh installs the release and the shipped unit; the agent becomes active (Type=notify, READY=1)', async () => {
    const config = {
      thingName: thing,
      stateDir: '/var/lib/edgevisor',
      mqtt: { url: `mqtt://10.0.2.2:${broker.port}`, reconnectMaxSeconds: 2 },
      http: { host: '127.0.0.1', port: HTTP_PORT },
      jobs: { enabled: true, allowlist: ['/usr/bin/node'] },
      monitor: { enabled: true, intervalSeconds: 5 },
      devices: { enabled: true, hotplug: 'auto' },
    };
    // the operator's configuration management writes the config first: install.sh keeps it
    await step(guest.ok('install -d -m 0750 /etc/edgevisor && umask 027 && cat > /etc/edgevisor/config.json', { input: JSON.stringify(config) }));
    const install = await step(guest.run(`${release}/scripts/install.sh`, { timeoutMs: 240_000 }));
    if (install.code !== 0) fail(new Error(`install.sh exited ${install.code}:\n${install.stdout}${install.stderr}`));
    console.log(`install.sh in the VM:\n${install.stdout}${install.stderr}`);
    expect(install.stdout).toMatch(/edgevisor: installed \d+\.\d+\.\d+/);
    // the unit as shipped, the user as install.sh made it
    expect(await guest.ok(`cat /etc/systemd/system/${UNIT}`)).toBe(shipped);
    expect(await guest.ok('id edgevisor')).toMatch(/groups=.*\(edgevisor\).*\(dialout\)|groups=.*\(dialout\).*\(edgevisor\)/);
    // install.sh's `systemctl restart` waits for the start job: with Type=notify, for READY=1
    expect((await guest.run(`systemctl is-active ${UNIT}`)).stdout.trim()).toBe('active');
    const shown = await guest.show(UNIT, ['Type', 'NotifyAccess', 'WatchdogUSec', 'StatusText', 'User', 'MainPID', 'UnitFileState']);
    expect(shown).toMatchObject({ Type: 'notify', NotifyAccess: 'all', User: 'edgevisor', UnitFileState: 'enabled' });
    expect(shown.WatchdogUSec).toBe(unitSetting('WatchdogSec'));
    expect(shown.StatusText).toMatch(/^(running|degraded)$/); // STATUS= from the agent
    activePid = shown.MainPID!;
    console.log(`systemctl show ${UNIT}: ${JSON.stringify(shown)}`);
    await step(waitFor(() => messagesOn('status').find((m) => m.payload.includes('online')), 'the agent online on the host mosquitto', 60_000));
    installed = true;
  });

  test('runs a job: an allowlisted program from a job document, SUCCEEDED reported, inside the sandbox', async () => {
    needsAgent();
    // the job tries to write /etc: ProtectSystem=strict makes it read-only for the job too (docs/deploy.md)
    const script = "let w='written';try{require('fs').writeFileSync('/etc/edgevisor-job','x')}catch(e){w=e.code}console.log('uid='+process.getuid()+' etc='+w)";
    const document = {
      version: '1.0',
      includeStdOut: true,
      steps: [{ action: { name: 'whoami', type: 'runCommand', input: { command: '/usr/bin/node', args: ['-e', script] } } }],
    };
    jobs.createJob(thing, 'vm-job-1', document);
    const done = await step(
      waitFor(
        () => (['SUCCEEDED', 'FAILED', 'REJECTED'].includes(jobs.execution(thing, 'vm-job-1')?.status ?? '') ? jobs.execution(thing, 'vm-job-1') : undefined),
        'the job to end',
        120_000,
      ),
    );
    expect(done.status, JSON.stringify(done.statusDetails)).toBe('SUCCEEDED');
    const uid = (await guest.ok('id -u edgevisor')).trim();
    expect(String(done.statusDetails?.stdout)).toContain(`uid=${uid} etc=EROFS`);
    console.log(`job vm-job-1: ${done.status} ${JSON.stringify(done.statusDetails)}`);
  });

  test('samples host monitoring under ProtectProc=invisible: cpu-percent and memory keys on the host mosquitto', async () => {
    needsAgent();
    const sample = await step(
      waitFor(
        () =>
          messagesOn('monitoring')
            .map((m) => JSON.parse(m.payload))
            .find((p) => p.values?.['cpu-percent'] !== undefined),
        'a monitoring sample with cpu-percent',
        60_000,
      ),
    );
    expect(sample.device).toBe(thing);
    expect(sample.values['memory-total-bytes']).toBeGreaterThan(0);
    expect(sample.values['memory-used-percent']).toBeGreaterThan(0);
    expect(unitSetting('ProtectProc')).toBe('invisible');
    const { 'cpu-percent': cpu, 'memory-used-percent': memory } = sample.values;
    console.log(`monitoring sample: ${Object.keys(sample.values).length} keys, cpu-percent ${cpu}, memory-used-percent ${memory}`);
  });

  test('opens a hot-plugged USB serial adapter (DevicePolicy=closed, DeviceAllow=char-ttyUSB, the udev rule) and publishes its lines', async () => {
    needsAgent();
    const serial = await step(vm.chardev('ftdi'));
    try {
      await vm.plugFtdi('ftdi0', 'ftdi');
      const stateTopic = new RegExp(`^devices/${thing}/peripherals/([^/]+)/state$`);
      const id = await step(
        waitFor(
          () =>
            mqtt.messages.flatMap((m) => (stateTopic.test(m.topic) && JSON.parse(m.payload).state === 'streaming' ? [stateTopic.exec(m.topic)![1]!] : []))[0],
          'the FTDI adapter streaming',
          60_000,
        ),
      );
      let n = 0;
      const writing = setInterval(() => serial.write(`under the unit ${++n}\n`), 200);
      try {
        await step(
          waitFor(
            () => messagesOn(`peripherals/${id}/data`).find((m) => m.payload.includes('under the unit')),
            "the adapter's lines on the host mosquitto",
            30_000,
          ),
        );
      } finally {
        clearInterval(writing);
      }
      // udev's events reach the agent through AF_NETLINK, which the unit allows: not the polling fallback alone
      expect(vm.consoleText.match(/"source":"([^"]*)"[^\n]*"msg":"watching for devices"/)?.[1]).toMatch(/^usb hotplug/);
      console.log(`serial: ${id} streaming, ${messagesOn(`peripherals/${id}/data`).length} data messages; ${(await guest.ok('ls -l /dev/ttyUSB0')).trim()}`);
    } finally {
      serial.destroy();
    }
  });

  test('accepts a publish through its HTTP API and delivers it to the host mosquitto', async () => {
    needsAgent();
    expect(await step(publishThroughApi(`devices/${thing}/api`, 'through the API'))).toBe(202);
    await step(waitFor(() => messagesOn('api').find((m) => m.payload === 'through the API'), 'the API publish on the host mosquitto', 60_000));
  });

  test('the watchdog keeps it alive past WatchdogSec: pings arrive, no restart', async () => {
    needsAgent();
    const watchdogUs = Number(/^(\d+)s$/.exec(unitSetting('WatchdogSec') ?? '')?.[1]) * 1e6;
    expect(watchdogUs).toBeGreaterThan(0);
    const monotonicUs = async () => Math.round(Number((await guest.ok('cut -d" " -f1 /proc/uptime')).trim()) * 1e6);
    const since = async () => (await monotonicUs()) - Number((await guest.show(UNIT, ['ActiveEnterTimestampMonotonic'])).ActiveEnterTimestampMonotonic);
    // bounded: from READY=1, at most WatchdogSec and a margin
    await step(
      waitFor(
        async () => ((await since()) > watchdogUs + 5e6 ? true : undefined),
        'WatchdogSec and 5 s to pass since the agent became active',
        watchdogUs / 1000 + 60_000,
      ),
    );
    const shown = await guest.show(UNIT, ['ActiveState', 'MainPID', 'NRestarts', 'WatchdogTimestampMonotonic', 'ActiveEnterTimestampMonotonic']);
    expect(shown).toMatchObject({ ActiveState: 'active', MainPID: activePid, NRestarts: '0' });
    // the last ping came after the start, within the last WatchdogSec
    const lastPing = Number(shown.WatchdogTimestampMonotonic);
    expect(lastPing).toBeGreaterThan(Number(shown.ActiveEnterTimestampMonotonic));
    const now = await monotonicUs();
    expect(now - lastPing).toBeLessThan(watchdogUs);
    const active = (now - Number(shown.ActiveEnterTimestampMonotonic)) / 1e6;
    console.log(
      `watchdog: active for ${active.toFixed(1)} s (WatchdogSec ${watchdogUs / 1e6} s), last ping ${((now - lastPing) / 1e6).toFixed(1)} s ago, ${JSON.stringify(shown)}`,
    );
  });

  test("MemoryMax is the agent's cgroup memory.max; systemd-analyze security rates the unit ≤ 2.0", async () => {
    needsAgent();
    const cgroup = (await guest.show(UNIT, ['ControlGroup'])).ControlGroup;
    const limits = await guest.ok(`cat /sys/fs/cgroup${cgroup}/memory.max /sys/fs/cgroup${cgroup}/memory.high`);
    const mib = (value: string | undefined) => Number(/^(\d+)M$/.exec(value ?? '')?.[1]) * 1024 * 1024;
    expect(limits.trim().split('\n').map(Number)).toEqual([mib(unitSetting('MemoryMax')), mib(unitSetting('MemoryHigh'))]);
    const analysed = await step(guest.ok(`systemd-analyze security --no-pager ${UNIT}`));
    const exposure = Number(/Overall exposure level for edgevisor\.service: (\d+\.\d+)/.exec(analysed)?.[1]);
    console.log(`${cgroup}: memory.max, memory.high = ${limits.trim().split('\n').join(', ')}; systemd-analyze security ${UNIT} in the VM: ${exposure}`);
    expect(exposure).toBeLessThanOrEqual(2.0);
  });

  test('the outbox keeps an API publish in the StateDirectory across `systemctl restart` with the broker down', async () => {
    needsAgent();
    const kept = await persistentSubscriber(broker.url, `devices/${thing}/kept`);
    try {
      await broker.stop();
      expect(await step(publishThroughApi(`devices/${thing}/kept`, 'kept across a restart'))).toBe(202);
      const before = (await guest.show(UNIT, ['MainPID'])).MainPID;
      await step(guest.ok(`systemctl restart ${UNIT}`, { timeoutMs: 120_000 }));
      await step(waitActive('the agent active again after the restart'));
      expect((await guest.show(UNIT, ['MainPID'])).MainPID).not.toBe(before);
      expect(await guest.ok('stat -c "%U %a" /var/lib/edgevisor')).toMatch(/^edgevisor 7\d\d/);
      expect(kept.received).toEqual([]);
      await broker.resume();
      await step(
        waitFor(() => kept.received.find((m) => m.payload === 'kept across a restart'), 'the publish kept across the restart on the host mosquitto', 90_000),
      );
    } finally {
      await kept.close();
    }
  });

  test('`systemctl stop` is a clean stop: STOPPING=1, exit status 0; `systemctl start` brings it back', async () => {
    needsAgent();
    // PID 1 logs each notification it takes at debug level, with the unit's name
    await step(guest.ok('systemctl log-level debug'));
    await step(guest.ok(`systemctl stop ${UNIT}`, { timeoutMs: 60_000 }));
    await step(guest.ok('systemctl log-level info'));
    const shown = await guest.show(UNIT, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus']);
    // ExecMainCode 1: CLD_EXITED (not killed by a signal)
    expect(shown).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainCode: '1', ExecMainStatus: '0' });
    const journal = await guest.ok(`journalctl --no-pager -o cat -u ${UNIT}`);
    const stopping = /^.*Got notification message from PID \d+ \([^)]*STOPPING=1.*$/m.exec(journal)?.[0];
    expect(stopping).toBeDefined();
    console.log(`stop: ${stopping}; ${JSON.stringify(shown)}`);
    expect(journal).toMatch(/"msg":"stopped"/);
    await step(guest.ok(`systemctl start ${UNIT}`, { timeoutMs: 120_000 }));
    expect((await guest.run(`systemctl is-active ${UNIT}`)).stdout.trim()).toBe('active');
  });
});
