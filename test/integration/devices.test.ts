import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runAgent, waitForHealth, type AgentProcess } from '../support/agent.js';
import { subscriber } from '../support/mqtt.js';
import { freePort, waitFor } from '../support/ports.js';
import { PtyPair } from '../support/socat.js';
import { FakeSysfs } from '../support/sysfs.js';
import { frameRejections } from '../../src/devices/protocols.js';

/**
 * The built agent as a process, with real socat pseudo-terminals as its serial ports (fixed in
 * devices.ports[], and one behind a fake sysfs tree as a USB FTDI adapter), real mosquitto,
 * real HTTP and WebSocket clients.
 */
const thing = `devices-it-${process.pid}`;
const shipped = join(import.meta.dirname, '../../profiles');
let agent: AgentProcess;
let base: string;
let mqtt: Awaited<ReturnType<typeof subscriber>>;
let profilesDir: string;
let sysfs: FakeSysfs;
const pty: Record<string, PtyPair> = {};

const topic = (id: string, kind: 'data' | 'state') => `devices/${thing}/peripherals/${id}/${kind}`;
const data = (id: string) => mqtt.messages.filter((m) => m.topic === topic(id, 'data')).map((m) => JSON.parse(m.payload));
const states = (id: string) => mqtt.messages.filter((m) => m.topic === topic(id, 'state')).map((m) => JSON.parse(m.payload).state as string);
const lastState = (id: string) => states(id).at(-1);
const devices = async () =>
  (await (await fetch(`${base}/api/v1/devices`)).json()) as {
    source: string;
    devices: any[];
    profiles: { loaded: string[]; errors: Array<{ file: string; message: string }> };
  };
const device = async (id: string) => (await devices()).devices.find((d) => d.id === id);

/** What the agent process has open, by /proc/<pid>/fd. */
const openFds = (pid: number) =>
  readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
const profile = (name: string, body: Record<string, unknown>) => writeFileSync(join(profilesDir, `${name}.json`), JSON.stringify(body));

beforeAll(async () => {
  profilesDir = mkdtempSync(join(tmpdir(), 'edgevisor-it-profiles-'));
  writeFileSync(join(profilesDir, 'ftdi-ft232r.json'), readFileSync(join(shipped, 'ftdi-ft232r.json')));
  writeFileSync(join(profilesDir, 'gps-uart.json'), readFileSync(join(shipped, 'gps-uart.json')));
  profile('json-sensor', { protocol: { type: 'json' }, failing: { malformedInARow: 5 } });
  profile('regex-sensor', { protocol: { type: 'regex', pattern: '^T=(?<temp>[-\\d.]+) H=(?<hum>\\d+)$' } });
  profile('kv-sensor', { protocol: { type: 'keyvalue' }, serial: { baudRate: 115200 }, commands: {} });
  profile('fast-lines', { protocol: { type: 'lines' }, serial: { baudRate: 921600 } });
  profile('broken', { serial: { baudRate: -5 } }); // refused, named in the API; the rest loads
  profile('led-board', { protocol: { type: 'lines' }, commands: { pattern: 'LED (ON|OFF)|PING', maxBytes: 16, lineEnding: 'crlf', maxPerSecond: 1000 } });
  profile('slow-board', { protocol: { type: 'lines' }, commands: { maxPerSecond: 0.1 } });
  for (const name of ['lines', 'json', 'nmea', 'regex', 'kv', 'fast', 'usb', 'widget', 'led', 'slow', 'twinA', 'twinB']) pty[name] = await PtyPair.start(name);
  sysfs = new FakeSysfs();
  mqtt = await subscriber(inject('mqttUrl'), `devices/${thing}/peripherals/#`);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  agent = runAgent({
    config: {
      thingName: thing,
      mqtt: { url: inject('mqttUrl'), reconnectMinSeconds: 0.1, reconnectMaxSeconds: 0.5 },
      http: { port },
      devices: {
        enabled: true,
        profilesDir,
        hotplug: 'auto',
        pollIntervalSeconds: 0.1,
        reconnectMinSeconds: 0.1,
        reconnectMaxSeconds: 0.4,
        sysfsRoot: sysfs.sys,
        devRoot: sysfs.dev,
        ports: [
          { path: pty.lines.near, profile: 'ftdi-ft232r', id: 'lines' },
          { path: pty.json.near, profile: 'json-sensor', id: 'json' },
          { path: pty.nmea.near, profile: 'gps-uart', id: 'nmea' },
          { path: pty.regex.near, profile: 'regex-sensor', id: 'regex' },
          { path: pty.kv.near, profile: 'kv-sensor', id: 'kv' },
          { path: pty.fast.near, profile: 'fast-lines', id: 'fast' },
          { path: pty.led.near, profile: 'led-board', id: 'led' },
          { path: pty.slow.near, profile: 'slow-board', id: 'slow' },
        ],
      },
    },
  });
  await waitForHealth(base, 200, 20_000);
  for (const id of ['lines', 'json', 'nmea', 'regex', 'kv', 'fast', 'led', 'slow'])
    await waitFor(() => lastState(id) === 'streaming', `${id} streaming`, 20_000);
}, 60_000);

afterAll(async () => {
  agent?.child.kill('SIGTERM');
  await agent?.exited;
  await mqtt?.close();
  for (const p of Object.values(pty)) await p.stop();
  sysfs?.remove();
});

describe('serial peripherals, end to end', () => {
  it('lines: each line, verbatim, as {"line","ts"} on .../data; the retained state is streaming', async () => {
    await pty.lines.write('hello 1\r\n  spaced  \nutf8 °C ✓\nsensor: \uFFFD (unknown)\n');
    await waitFor(() => data('lines').length >= 4, 'four lines');
    // a U+FFFD sent as valid UTF-8 text is a reading like any other
    expect(data('lines').map((d) => d.line)).toEqual(['hello 1', '  spaced  ', 'utf8 °C ✓', 'sensor: \uFFFD (unknown)']);
    expect(typeof data('lines')[0].ts).toBe('number');
    expect(states('lines')).toEqual(['detected', 'opening', 'streaming']);
    expect(mqtt.messages.find((m) => m.topic === topic('lines', 'state'))).toBeDefined();
  });

  it('json, nmea, regex and key=value: parsed objects next to the line text', async () => {
    const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
    const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
    await Promise.all([
      pty.json.write('{"t":21.5,"id":"a"}\n'),
      pty.nmea.write(`${gga}\r\n${rmc}\r\n`),
      pty.regex.write('T=-3.5 H=40\n'),
      pty.kv.write('t=21.5,h=40,state=ok\n'),
    ]);
    await waitFor(() => data('json').length > 0 && data('nmea').length >= 2 && data('regex').length > 0 && data('kv').length > 0, 'a reading from each');
    expect(data('json')[0]).toMatchObject({ line: '{"t":21.5,"id":"a"}', data: { t: 21.5, id: 'a' } });
    expect(data('nmea')[0]).toMatchObject({
      line: gga,
      data: { sentence: 'GGA', position: { lat: 48.1173, lon: 11.516667 }, fix: { valid: true, quality: 1, satellites: 8 } },
    });
    expect(data('nmea')[1]).toMatchObject({ line: rmc, data: { sentence: 'RMC', speed: { knots: 22.4 }, date: '1994-03-23', fix: { valid: true } } });
    expect(data('regex')[0]).toMatchObject({ line: 'T=-3.5 H=40', data: { temp: -3.5, hum: 40 } });
    expect(data('kv')[0]).toMatchObject({ line: 't=21.5,h=40,state=ok', data: { t: 21.5, h: 40, state: 'ok' } });
  });

  it('malformed frames are counted and skipped; only garbage makes the device failing, a good frame makes it streaming again', async () => {
    const before = data('nmea').length;
    await pty.nmea.write('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48\r\nnoise\r\n');
    await waitFor(async () => (await device('nmea'))?.counters.errors === 2, 'two NMEA errors counted');
    expect(data('nmea').length).toBe(before);

    await pty.json.write('not json\n{"broken":\n\x00\x01\x02\n');
    await waitFor(async () => (await device('json'))?.counters.errors === 3, 'three errors');
    expect(lastState('json')).toBe('streaming'); // fewer than malformedInARow (5)
    await pty.json.write('garbage\n'.repeat(10));
    await waitFor(() => lastState('json') === 'failing', 'json failing');
    const row = await device('json');
    expect(row).toMatchObject({ state: 'failing', present: true, counters: { errors: 13, rejected: { not_json: 12, control_characters: 1 } } });
    expect(row.lastRejected).toEqual({ reason: 'not_json', message: expect.stringMatching(/^not JSON: /), at: expect.any(Number) });
    expect((await device('nmea')).counters.rejected).toEqual({ bad_checksum: 1, bad_sentence: 1 });
    expect((await fetch(`${base}/health`)).status).toBe(200); // a failing device does not crash or fail the agent
    await pty.json.write('{"ok":1}\n');
    await waitFor(() => lastState('json') === 'streaming', 'json streaming again');
    expect(data('json').at(-1)).toMatchObject({ data: { ok: 1 } });
  });

  it('the far end closing and coming back: reconnecting with backoff, then streaming again, no restart', async () => {
    await pty.kv.stop();
    await waitFor(() => lastState('kv') === 'reconnecting', 'kv reconnecting');
    await new Promise((r) => setTimeout(r, 600)); // a few failed attempts while it is gone
    expect((await device('kv')).state).toMatch(/reconnecting|opening/);
    await pty.kv.restart();
    await waitFor(() => lastState('kv') === 'streaming', 'kv streaming again', 10_000);
    await pty.kv.write('again=1\n');
    await waitFor(() => data('kv').some((d) => d.line === 'again=1'), 'a reading after the reconnect');
    expect((await device('kv')).counters.reconnects).toBeGreaterThanOrEqual(2);
  });

  it('a burst at 921,600 baud: every line arrives on MQTT, in order', async () => {
    const n = 5000;
    const lines = Array.from({ length: n }, (_, i) => `burst ${i} ${'x'.repeat(i % 40)}`);
    // at the pace of 921,600 baud 8N1 (92,160 bytes/s), in slices of 500 lines (~15 KB)
    const started = Date.now();
    let sent = 0;
    for (let i = 0; i < n; i += 500) {
      const slice = Buffer.from(
        lines
          .slice(i, i + 500)
          .map((l) => `${l}\n`)
          .join(''),
      );
      await pty.fast.write(slice);
      sent += slice.length;
      const due = started + (sent / 92_160) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    const fastTopic = topic('fast', 'data');
    await waitFor(() => mqtt.messages.filter((m) => m.topic === fastTopic).length >= n, `${n} lines on MQTT`, 60_000);
    expect(data('fast').map((d) => d.line)).toEqual(lines);
    expect((await device('fast')).counters).toMatchObject({ frames: n, errors: 0, dropped: 0 });
  }, 90_000);

  it('/ws: a subscribed client gets each reading as it is parsed; others do not', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const got: any[] = [];
    ws.on('message', (raw) => got.push(JSON.parse(String(raw))));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.send(JSON.stringify({ type: 'subscribe', devices: ['regex'] }));
    await waitFor(() => got.some((m) => m.type === 'subscribed'), 'subscribed');
    await pty.lines.write('not for this client\n');
    await pty.regex.write('T=1.5 H=2\n');
    await waitFor(() => got.some((m) => m.type === 'reading'), 'a reading');
    const readings = got.filter((m) => m.type === 'reading');
    expect(readings).toEqual([{ type: 'reading', device: 'regex', reading: { line: 'T=1.5 H=2', ts: expect.any(Number), data: { temp: 1.5, hum: 2 } } }]);
    // a rejected frame is shown with its reason, to the same subscribers
    await pty.regex.write('T=warm\n');
    await waitFor(() => got.some((m) => m.type === 'rejected'), 'a rejected frame');
    expect(got.filter((m) => m.type === 'rejected')).toEqual([
      { type: 'rejected', device: 'regex', reason: 'no_match', message: 'does not match the pattern', at: expect.any(Number) },
    ]);
    ws.close();
  });

  it('a USB FTDI adapter (fake sysfs, real pty) is found, streams, is marked gone when unplugged and resumes when plugged back', async () => {
    // a fake sysfs: auto mode polls it, whatever this machine's USB bus does
    expect((await devices()).source).toMatch(/^sysfs polling every 100 ms \(usb hotplug unavailable: devices\.sysfsRoot is .*, not \/sys\)$/);
    const id = 'usb-0403-6001-FT0001';
    const plug = () =>
      sysfs.plug({
        name: 'ttyUSB0',
        vendorId: '0403',
        productId: '6001',
        serial: 'FT0001',
        manufacturer: 'FTDI',
        product: 'FT232R USB UART',
        target: pty.usb.near,
      });
    plug();
    await waitFor(() => lastState(id) === 'streaming', 'the FTDI streaming');
    await pty.usb.write('from usb\n');
    await waitFor(() => data(id).some((d) => d.line === 'from usb'), 'usb data');
    expect(await device(id)).toMatchObject({
      present: true,
      profile: 'ftdi-ft232r',
      state: 'streaming',
      vendorId: '0403',
      productId: '6001',
      serial: 'FT0001',
      path: join(sysfs.dev, 'ttyUSB0'),
    });
    const pts = realpathSync(pty.usb.near);
    expect(openFds(agent.child.pid!)).toContain(pts);
    sysfs.unplug('ttyUSB0');
    await waitFor(() => lastState(id) === 'gone', 'gone');
    // closed at once on detach, not when a read or write finally fails
    await waitFor(() => !openFds(agent.child.pid!).includes(pts), 'the port closed');
    await waitFor(async () => (await device(id))?.present === false, 'listed as not present');
    expect(await device(id)).toMatchObject({ state: 'gone', profile: 'ftdi-ft232r', counters: { frames: 1 } });
    plug();
    await waitFor(() => states(id).filter((s) => s === 'streaming').length === 2, 'streaming again');
    await pty.usb.write('back\n');
    await waitFor(() => data(id).some((d) => d.line === 'back'), 'data after replug');
    expect((await device(id)).counters.frames).toBe(2); // counters carry over for the same device
  });

  it('profiles: a bad file is named with its key; a profile added while running opens a device nobody matched', async () => {
    const view = await devices();
    expect(view.profiles.loaded).toContain('ftdi-ft232r');
    expect(view.profiles.errors).toEqual([{ file: join(profilesDir, 'broken.json'), message: expect.stringMatching(/broken\.json: serial\.baudRate: /) }]);
    const id = 'usb-feed-beef-X1';
    sysfs.plug({ name: 'ttyACM7', vendorId: 'feed', productId: 'beef', serial: 'X1', busPath: '1-7', driver: 'acm', target: pty.widget.near });
    await waitFor(async () => (await device(id))?.state === 'unmatched', 'the unknown device listed');
    expect(states(id)).toEqual([]);
    profile('my-widget', { match: [{ vendorId: 'feed', productId: 'beef' }], protocol: { type: 'lines' } });
    await waitFor(() => lastState(id) === 'streaming', 'the new profile applied', 10_000);
    expect((await device(id)).profile).toBe('my-widget');
    await pty.widget.write('w=1\n');
    await waitFor(() => data(id).some((d) => d.line === 'w=1'), 'a reading from the widget');
    sysfs.unplug('ttyACM7', '1-7');
    await waitFor(() => lastState(id) === 'gone', 'gone');
  });

  it('/metrics exports the device counters', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/edgevisor_device_frames_total\{device="fast",profile="fast-lines"\} 5000/);
    expect(text).toMatch(/edgevisor_device_errors_total\{device="json",profile="json-sensor"\} 13/);
    expect(text).toMatch(/edgevisor_device_reconnects_total\{device="kv",profile="kv-sensor"\} [1-9]/);
    expect(text).toMatch(/edgevisor_device_state\{device="lines",state="streaming"\} 1/);
    expect(text).toMatch(/edgevisor_device_frames_rejected_total\{device="json",reason="not_json"\} 12/);
    expect(text).toMatch(/edgevisor_device_frames_rejected_total\{device="json",reason="control_characters"\} 1/);
    expect(text).toMatch(/edgevisor_device_frames_rejected_total\{device="regex",reason="no_match"\} 1/);
    // reasons are codes from a fixed set: a device cannot mint label values
    const reasons = new Set([...text.matchAll(/edgevisor_device_frames_rejected_total\{[^}]*reason="([^"]+)"/g)].map((m) => m[1]));
    for (const reason of reasons) expect(frameRejections).toContain(reason);
    expect(agent.child.exitCode).toBeNull();
  });
});

describe('commands to devices (the write path)', () => {
  const commandTopic = (id: string) => `devices/${thing}/peripherals/${id}/command`;
  const results = (id: string) => mqtt.messages.filter((m) => m.topic === `${commandTopic(id)}/result`).map((m) => JSON.parse(m.payload));
  const post = async (id: string, body: unknown) => {
    const res = await fetch(`${base}/api/v1/devices/${id}/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  it("MQTT: a command reaches the far end of the port with the profile's line ending, answered on .../command/result", async () => {
    const far = pty.led.reader();
    await mqtt.client.publishAsync(commandTopic('led'), 'LED ON', { qos: 1 });
    await waitFor(() => far.text() === 'LED ON\r\n', 'the bytes at the far end');
    await waitFor(() => results('led').length === 1, 'the answer');
    expect(results('led')[0]).toEqual({ id: expect.any(String), device: 'led', accepted: true, bytes: 8, command: 'LED ON', ts: expect.any(Number) });
    far.close();
  });

  it('MQTT: refused commands are answered with their reason and never reach the port', async () => {
    const far = pty.led.reader();
    await mqtt.client.publishAsync(commandTopic('led'), 'REBOOT', { qos: 1 });
    await mqtt.client.publishAsync(commandTopic('led'), 'LED ON\nREBOOT', { qos: 1 });
    await mqtt.client.publishAsync(commandTopic('led'), Buffer.from([0x4c, 0xff]), { qos: 1 });
    await mqtt.client.publishAsync(commandTopic('lines'), 'hello', { qos: 1 }); // its profile takes no commands
    await mqtt.client.publishAsync(commandTopic('no-such-device'), 'hello', { qos: 1 });
    await waitFor(() => results('led').length === 4 && results('lines').length === 1 && results('no-such-device').length === 1, 'five answers');
    expect(
      results('led')
        .slice(1)
        .map((r) => [r.accepted, r.reason]),
    ).toEqual([
      [false, 'not_allowed'],
      [false, 'bad_command'],
      [false, 'bad_command'],
    ]);
    expect(results('lines')[0]).toMatchObject({ accepted: false, reason: 'not_writable', message: expect.stringContaining('no "commands"') });
    expect(results('no-such-device')[0]).toMatchObject({ accepted: false, reason: 'unknown_device' });
    await new Promise((r) => setTimeout(r, 200));
    expect(far.text()).toBe('');
    far.close();
  });

  it('HTTP: POST /api/v1/devices/<id>/write writes, or answers with the reason and its status', async () => {
    const far = pty.led.reader();
    expect(await post('led', { command: 'PING' })).toEqual({ status: 200, body: { id: expect.any(String), device: 'led', accepted: true, bytes: 6 } });
    await waitFor(() => far.text() === 'PING\r\n', 'PING at the far end');
    expect(await post('led', { command: 'LED BLINK' })).toMatchObject({ status: 403, body: { accepted: false, reason: 'not_allowed' } });
    expect(await post('led', { command: 'LED ON'.padEnd(20, ' ') })).toMatchObject({ status: 403, body: { reason: 'not_allowed' } });
    expect(await post('led', { cmd: 'PING' })).toMatchObject({ status: 400, body: { accepted: false, reason: 'bad_command' } });
    expect(await post('nope', { command: 'PING' })).toMatchObject({ status: 404, body: { reason: 'unknown_device' } });
    // bounded rate: the slow board takes one command per 10 s
    expect((await post('slow', { command: 'one' })).status).toBe(200);
    expect(await post('slow', { command: 'two' })).toMatchObject({ status: 429, body: { accepted: false, reason: 'rate_limited' } });
    far.close();
  });

  it('a device that is not open refuses writes at once (nothing is queued for later)', async () => {
    await pty.kv.stop();
    await waitFor(() => lastState('kv') === 'reconnecting', 'kv reconnecting');
    expect(await post('kv', { command: 'x' })).toMatchObject({ status: 409, body: { accepted: false, reason: 'not_open' } });
    await pty.kv.restart();
    const far = pty.kv.reader();
    await waitFor(() => lastState('kv') === 'streaming', 'kv streaming again', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(far.text()).toBe(''); // the refused write was not sent later
    expect(await post('kv', { command: 'x' })).toMatchObject({ status: 200 });
    await waitFor(() => far.text() === 'x\n', 'written once open');
    far.close();
  });

  it('/ws: {"type":"write"} is answered with write.result', async () => {
    const far = pty.led.reader();
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
    const got: any[] = [];
    ws.on('message', (raw) => got.push(JSON.parse(String(raw))));
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    ws.send(JSON.stringify({ type: 'write', device: 'led', command: 'LED OFF', ref: 'r1' }));
    ws.send(JSON.stringify({ type: 'write', device: 'led', command: 'LED DANCE', ref: 'r2' }));
    await waitFor(() => got.filter((m) => m.type === 'write.result').length === 2, 'two answers');
    const answers = got.filter((m) => m.type === 'write.result');
    expect(answers.find((a) => a.ref === 'r1')).toEqual({ type: 'write.result', ref: 'r1', id: expect.any(String), device: 'led', accepted: true, bytes: 9 });
    expect(answers.find((a) => a.ref === 'r2')).toMatchObject({ accepted: false, reason: 'not_allowed' });
    await waitFor(() => far.text() === 'LED OFF\r\n', 'LED OFF at the far end');
    ws.close();
    far.close();
  });

  it('writes and refusals are counted per device, by reason', async () => {
    const row = await device('led');
    expect(row.counters.writes).toBeGreaterThanOrEqual(3);
    expect(row.counters.writesRefused).toMatchObject({ not_allowed: expect.any(Number), bad_command: expect.any(Number) });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/edgevisor_device_writes_refused_total\{device="slow",reason="rate_limited"\} 1/);
    expect(text).toMatch(/edgevisor_device_writes_total\{device="led",profile="led-board"\} [3-9]/);
  });
});

describe('two USB adapters with one serial number', () => {
  // Plugged one after the other, so that the ids do not depend on whether one sysfs scan saw
  // both: the first keeps its serial-number id, the twin gets its USB port's. Both in one
  // scan (as at boot) both get port ids: test/src/devices/detection.test.ts.
  it('both open under their own ids: the first keeps the serial-number id, the twin plugged in later gets its port, with a row and a log line', async () => {
    const twin = (name: string, busPath: string, target: string) => ({
      name,
      vendorId: '0403',
      productId: '6001',
      serial: 'A10K5X3Q',
      manufacturer: 'FTDI',
      busPath,
      target,
    });
    const a = 'usb-0403-6001-A10K5X3Q';
    const b = 'usb-0403-6001-A10K5X3Q-at-2-2';
    sysfs.plug(twin('ttyUSB5', '2-1', pty.twinA.near));
    await waitFor(() => lastState(a) === 'streaming', 'the first adapter streaming');
    sysfs.plug(twin('ttyUSB6', '2-2', pty.twinB.near));
    await waitFor(() => lastState(b) === 'streaming', 'the twin streaming');
    await pty.twinA.write('from A\n');
    await pty.twinB.write('from B\n');
    await waitFor(() => data(a).length === 1 && data(b).length === 1, 'a reading from each');
    expect([data(a)[0].line, data(b)[0].line]).toEqual(['from A', 'from B']);
    expect(states(a)).not.toContain('gone'); // the twin did not rename it
    expect(await device(a)).toMatchObject({ present: true, serial: 'A10K5X3Q', state: 'streaming' });
    expect(await device(b)).toMatchObject({ present: true, serial: 'A10K5X3Q', state: 'streaming', note: expect.stringContaining('shared by 2 devices') });
    expect(agent.logs.filter((l) => l.msg === 'device attached under another id').map((l) => l.device)).toEqual([b]);
    sysfs.unplug('ttyUSB5', '2-1');
    sysfs.unplug('ttyUSB6', '2-2');
    await waitFor(() => lastState(a) === 'gone' && lastState(b) === 'gone', 'both gone');
  });
});

describe('a clean stop', () => {
  it('leaves the retained state of every open device at stopped, not streaming', async () => {
    const pair = await PtyPair.start('stop');
    const stopThing = `${thing}-stop`;
    const stateTopic = `devices/${stopThing}/peripherals/gps/state`;
    const watch = await subscriber(inject('mqttUrl'), stateTopic);
    const httpPort = await freePort();
    const stopping = runAgent({
      config: {
        thingName: stopThing,
        mqtt: { url: inject('mqttUrl') },
        http: { port: httpPort },
        devices: { enabled: true, hotplug: 'off', ports: [{ path: pair.near, profile: 'gps-uart', id: 'gps' }] },
      },
    });
    try {
      await waitFor(() => watch.messages.some((m) => JSON.parse(m.payload).state === 'streaming'), 'the GPS streaming', 20_000);
      stopping.child.kill('SIGTERM');
      expect((await stopping.exited).code).toBe(0);
      await watch.close();
      // a fresh subscriber: what the broker retained after the agent went
      const fresh = await subscriber(inject('mqttUrl'), stateTopic);
      const retained = await waitFor(() => fresh.messages[0], 'the retained state');
      await fresh.close();
      expect(JSON.parse(retained.payload)).toMatchObject({ state: 'stopped', id: 'gps', profile: 'gps-uart', path: pair.near });
      expect(stopping.logs.some((l) => l.msg === 'devices stopped')).toBe(true);
    } finally {
      if (stopping.child.exitCode === null) stopping.child.kill('SIGKILL');
      await pair.stop();
    }
  }, 60_000);
});

describe('known devices', () => {
  it('are remembered across a restart: listed as known, with their identity, when not plugged in', async () => {
    const tree = new FakeSysfs();
    const pair = await PtyPair.start('known');
    const stateDir = mkdtempSync(join(tmpdir(), 'edgevisor-known-'));
    try {
      tree.plug({ name: 'ttyUSB3', vendorId: '067b', productId: '2303', busPath: '3-1', target: pair.near });
      const httpPort = await freePort();
      const config = {
        thingName: `${thing}-known`,
        mqtt: { url: inject('mqttUrl') },
        http: { port: httpPort },
        devices: { enabled: true, hotplug: 'sysfs', pollIntervalSeconds: 0.1, sysfsRoot: tree.sys, devRoot: tree.dev },
      };
      const url = `http://127.0.0.1:${httpPort}/api/v1/devices`;
      const list = async () => ((await (await fetch(url)).json()) as { devices: any[] }).devices;
      const first = runAgent({ config, stateDir });
      await waitFor(async () => (await list().catch(() => []))[0]?.state === 'streaming', 'the PL2303 streaming', 20_000);
      first.child.kill('SIGTERM');
      expect((await first.exited).code).toBe(0);
      tree.unplug('ttyUSB3', '3-1');
      const second = runAgent({ config, stateDir });
      try {
        const rows = await waitFor(
          async () => {
            const r = await list().catch(() => []);
            return r.length > 0 ? r : undefined;
          },
          'the list after the restart',
          20_000,
        );
        expect(rows).toEqual([
          expect.objectContaining({
            id: 'usb-067b-2303-at-3-1',
            present: false,
            state: 'known',
            profile: 'prolific-pl2303',
            vendorId: '067b',
            productId: '2303',
            path: join(tree.dev, 'ttyUSB3'),
          }),
        ]);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      await pair.stop();
      tree.remove();
    }
  }, 60_000);
});

describe('the usb package in the built agent', () => {
  it('loads with the real /sys, and either watches the bus or says why it polls sysfs instead', async () => {
    const httpPort = await freePort();
    const usbAgent = runAgent({
      config: { thingName: `${thing}-usb`, mqtt: { url: inject('mqttUrl') }, http: { port: httpPort }, devices: { enabled: true, hotplug: 'usb' } },
    });
    try {
      const view = await waitFor(
        async () => {
          const body = await fetch(`http://127.0.0.1:${httpPort}/api/v1/devices`).then(
            (r) => r.json() as Promise<{ source: string | null; problem: string | null }>,
            () => undefined,
          );
          return body?.source ? { source: body.source, problem: body.problem } : undefined;
        },
        'the devices concern watching',
        20_000,
      );
      if (view.source.startsWith('usb hotplug')) expect(view.problem).toBeNull();
      else {
        // this machine: no USB bus, no udevd; the reason comes from the usb package's seam
        expect(view.source).toMatch(/^sysfs polling every 1000 ms \(usb hotplug unavailable: .*(libusb|udevd|usb package).*\)$/);
        expect(view.problem).toMatch(/usb hotplug unavailable .*; polling sysfs instead/);
      }
      expect((await fetch(`http://127.0.0.1:${httpPort}/health`)).status).toBe(200);
    } finally {
      usbAgent.child.kill('SIGTERM');
      await usbAgent.exited;
    }
  }, 40_000);
});
