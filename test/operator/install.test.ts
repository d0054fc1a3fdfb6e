import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { health } from '../support/agent.js';
import { killOnExit } from '../support/mosquitto.js';
import { freePort, waitFor } from '../support/ports.js';
import { terminate } from '../support/processes.js';
import { spawn } from 'node:child_process';

const repo = join(import.meta.dirname, '../..');

/** The operator's path: a release tarball, install, upgrade, roll back; into a DESTDIR. */
describe('release tarball and scripts/install.sh', () => {
  const work = mkdtempSync(join(tmpdir(), 'edgevisor-release-'));
  const dest = join(work, 'root');
  const opt = join(dest, 'opt/edgevisor');
  let unpacked: string;

  beforeAll(() => {
    const tarball = execFileSync('sh', ['scripts/release.sh', '--built'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync('tar', ['-xzf', join(repo, tarball), '-C', work]);
    rmSync(join(repo, tarball));
    unpacked = join(work, basename(tarball, '.tar.gz'));
  }, 180_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const install = (from: string, ...args: string[]) =>
    execFileSync('sh', [join(from, 'scripts/install.sh'), ...args], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
  const current = () => basename(readlinkSync(join(opt, 'current')));

  it('holds the production dependencies only', () => {
    expect(existsSync(join(unpacked, 'node_modules/xstate'))).toBe(true);
    expect(existsSync(join(unpacked, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(unpacked, 'node_modules/typescript'))).toBe(false);
  });

  it('installs the release, the unit, the udev rule, the command and a config from the example', () => {
    const version = JSON.parse(readFileSync(join(unpacked, 'package.json'), 'utf8')).version;
    install(unpacked);
    expect(current()).toBe(version);
    expect(readFileSync(join(dest, 'etc/systemd/system/edgevisor.service'), 'utf8')).toContain('/opt/edgevisor/current/dist/bundle/main.js');
    expect(existsSync(join(dest, 'etc/udev/rules.d/99-edgevisor.rules'))).toBe(true);
    expect(statSync(join(dest, 'usr/local/bin/edgevisor')).mode & 0o111).not.toBe(0);
    expect(statSync(join(dest, 'etc/edgevisor/config.json')).mode & 0o777).toBe(0o640);
  });

  it('runs from the installed release alone (no development dependencies)', async () => {
    const httpPort = await freePort();
    const config = join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        thingName: 'installed',
        stateDir: join(work, 'state'),
        mqtt: { url: 'embedded', embeddedPort: await freePort() },
        http: { host: '127.0.0.1', port: httpPort },
      }),
    );
    const agent = spawn(process.execPath, [join(opt, 'current/dist/bundle/main.js'), 'run', '--config', config], { stdio: 'ignore', cwd: work });
    killOnExit(agent);
    try {
      const answer = await waitFor(
        async () => ((await health(`http://127.0.0.1:${httpPort}`))?.status === 200 ? true : undefined),
        'the installed agent healthy',
        20_000,
      );
      expect(answer).toBe(true);
    } finally {
      await terminate(agent);
    }
  });

  it('upgrades keeping the previous release and the operator config, and rolls back', () => {
    writeFileSync(join(dest, 'etc/edgevisor/config.json'), '{"thingName":"mine"}');
    const before = current();
    const pkg = join(unpacked, 'package.json');
    writeFileSync(pkg, readFileSync(pkg, 'utf8').replace(/"version": "[^"]+"/, '"version": "99.0.0"'));
    install(unpacked);
    expect(current()).toBe('99.0.0');
    expect(basename(readlinkSync(join(opt, 'previous')))).toBe(before);
    expect(readFileSync(join(dest, 'etc/edgevisor/config.json'), 'utf8')).toBe('{"thingName":"mine"}');
    install(unpacked, '--rollback');
    expect(current()).toBe(before);
    expect(basename(readlinkSync(join(opt, 'previous')))).toBe('99.0.0');
  });
});
