import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProfileStore } from '../../../src/devices/profile-store.js';
import { loadProfiles, matchProfile, shippedProfilesDir } from '../../../src/devices/profiles.js';
import { waitFor } from '../../support/ports.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-profiles-'));
  dirs.push(dir);
  return dir;
};

describe('shipped profiles', () => {
  it('all load, with no errors', async () => {
    const { profiles, errors } = await loadProfiles(shippedProfilesDir);
    expect(errors).toEqual([]);
    expect([...profiles.keys()].sort()).toEqual([
      'arduino-ch340',
      'arduino-mega',
      'arduino-nano',
      'arduino-uno',
      'espressif-usb-serial-jtag',
      'ftdi-ft232r',
      'gps-uart',
      'prolific-pl2303',
      'silabs-cp210x',
      'ublox-gps',
    ]);
  });

  it.each([
    ['0403', '6001', 'ftdi-ft232r', 9600, 'lines'],
    ['2341', '0043', 'arduino-uno', 9600, 'lines'],
    ['2a03', '0043', 'arduino-uno', 9600, 'lines'],
    ['2341', '0042', 'arduino-mega', 9600, 'lines'],
    ['2341', '0058', 'arduino-nano', 9600, 'lines'],
    ['1a86', '7523', 'arduino-ch340', 9600, 'lines'],
    ['10c4', 'EA60', 'silabs-cp210x', 115200, 'lines'],
    ['067b', '2303', 'prolific-pl2303', 9600, 'lines'],
    ['303a', '1001', 'espressif-usb-serial-jtag', 115200, 'lines'],
    ['1546', '01a8', 'ublox-gps', 9600, 'nmea'],
  ])('%s:%s opens with %s (%i baud, %s)', async (vendorId, productId, name, baud, protocol) => {
    const { profiles } = await loadProfiles(shippedProfilesDir);
    const profile = matchProfile(profiles.values(), { vendorId, productId, interface: 0 });
    expect(profile?.name).toBe(name);
    expect(profile?.serial.baudRate).toBe(baud);
    expect(profile?.protocol.type).toBe(protocol);
  });

  it('matches nothing for unknown ids, nor the Espressif JTAG interface', async () => {
    const { profiles } = await loadProfiles(shippedProfilesDir);
    expect(matchProfile(profiles.values(), { vendorId: '1d6b', productId: '0002' })).toBeUndefined();
    expect(matchProfile(profiles.values(), { vendorId: '303a', productId: '1001', interface: 2 })).toBeUndefined();
  });
});

describe('profile files', () => {
  it('a bad file is refused with its file name and the key at fault; the good ones still load', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'good.json'), JSON.stringify({ match: [{ vendorId: '1234', productId: 'abcd' }] }));
    writeFileSync(join(dir, 'bad-vid.json'), JSON.stringify({ match: [{ vendorId: '12345' }] }));
    writeFileSync(join(dir, 'bad-baud.json'), JSON.stringify({ serial: { baudRate: 'fast' } }));
    writeFileSync(join(dir, 'bad-protocol.json'), JSON.stringify({ protocol: { type: 'modbus' } }));
    writeFileSync(join(dir, 'unknown-key.json'), JSON.stringify({ match: [], colour: 'red' }));
    writeFileSync(join(dir, 'not-json.json'), '{ "match": [ ');
    writeFileSync(join(dir, 'README.txt'), 'not a profile');
    const { profiles, errors } = await loadProfiles(dir);
    expect([...profiles.keys()]).toEqual(['good']);
    const byFile = Object.fromEntries(errors.map((e) => [e.file.slice(dir.length + 1), e.message]));
    expect(Object.keys(byFile).sort()).toEqual(['bad-baud.json', 'bad-protocol.json', 'bad-vid.json', 'not-json.json', 'unknown-key.json']);
    expect(byFile['bad-vid.json']).toMatch(/bad-vid\.json: match\.0\.vendorId: must be 4 hex digits/);
    expect(byFile['bad-baud.json']).toMatch(/bad-baud\.json: serial\.baudRate: /);
    expect(byFile['bad-protocol.json']).toMatch(/bad-protocol\.json: protocol\.type: /);
    expect(byFile['unknown-key.json']).toMatch(/unknown-key\.json: .*colour/);
    expect(byFile['not-json.json']).toMatch(/not-json\.json: not valid JSON/);
  });

  it('a missing directory is one clear error', async () => {
    const { profiles, errors } = await loadProfiles('/nonexistent/profiles');
    expect(profiles.size).toBe(0);
    expect(errors[0].message).toMatch(/cannot read the profiles directory/);
  });

  it('the most specific, then highest-priority rule wins', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'any-ftdi.json'), JSON.stringify({ match: [{ vendorId: '0403' }] }));
    writeFileSync(join(dir, 'ft232r.json'), JSON.stringify({ match: [{ vendorId: '0403', productId: '6001' }] }));
    writeFileSync(join(dir, 'my-sensor.json'), JSON.stringify({ match: [{ vendorId: '0403', productId: '6001', serial: '^SENS' }] }));
    const { profiles } = await loadProfiles(dir);
    const m = (serial?: string, productId = '6001') => matchProfile(profiles.values(), { vendorId: '0403', productId, serial })?.name;
    expect(m('SENS42')).toBe('my-sensor');
    expect(m('A123')).toBe('ft232r');
    expect(m(undefined, '6015')).toBe('any-ftdi');
    writeFileSync(join(dir, 'pinned.json'), JSON.stringify({ priority: 5, match: [{ vendorId: '0403' }] }));
    expect(matchProfile((await loadProfiles(dir)).profiles.values(), { vendorId: '0403', productId: '6001', serial: 'SENS1' })?.name).toBe('pinned');
  });

  it('a watched directory picks up an added, changed or removed profile without a restart', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ serial: { baudRate: 9600 } }));
    let changes = 0;
    const reported: string[] = [];
    const store = new ProfileStore(
      dir,
      () => changes++,
      (errors) => reported.push(...errors.map((e) => e.message)),
      50,
    );
    await store.open();
    try {
      expect([...store.profiles.keys()]).toEqual(['a']);
      writeFileSync(join(dir, 'b.json'), JSON.stringify({ serial: { baudRate: 115200 } }));
      await waitFor(() => store.profiles.has('b'), 'b.json to load');
      writeFileSync(join(dir, 'a.json'), JSON.stringify({ serial: { baudRate: 57600 } }));
      await waitFor(() => store.profiles.get('a')?.serial.baudRate === 57600, 'a.json to reload');
      writeFileSync(join(dir, 'c.json'), '{broken');
      await waitFor(() => reported.some((m) => m.includes('c.json')), 'c.json reported');
      expect(store.profiles.has('a') && store.profiles.has('b')).toBe(true);
      rmSync(join(dir, 'b.json'));
      await waitFor(() => !store.profiles.has('b'), 'b.json to go');
      expect(changes).toBeGreaterThanOrEqual(3);
    } finally {
      store.close();
    }
    expect(readFileSync(join(dir, 'a.json'), 'utf8')).toContain('57600');
  });
});

describe('deploy/99-edgevisor.rules', () => {
  it('gives the agent group every USB device a shipped profile matches (run `npm run udev-rules` after a change)', async () => {
    const { udevRules, rulesFile } = await import('../../../scripts/udev-rules.js');
    const text = readFileSync(rulesFile, 'utf8');
    expect(text).toBe(await udevRules());
    expect(text).toContain('SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", GROUP="edgevisor", MODE="0660"');
  });
});
