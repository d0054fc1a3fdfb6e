import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAgent, waitForHealth } from '../support/agent.js';
import { killOnExit } from '../support/mosquitto.js';
import { freePort, waitFor } from '../support/ports.js';
import { terminate } from '../support/processes.js';

const unit = join(import.meta.dirname, '../../deploy/edgevisor.service');

describe('deploy/edgevisor.service', () => {
  it('passes systemd-analyze verify', () => {
    const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(result.error, 'systemd-analyze is missing: apt-get install systemd').toBeUndefined();
    expect(result.stderr.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it('has an exposure level of at most 2.0 in systemd-analyze security', () => {
    const result = spawnSync('systemd-analyze', ['security', '--offline=yes', unit], { encoding: 'utf8' });
    const exposure = Number(/Overall exposure level for edgevisor\.service: ([\d.]+)/.exec(result.stdout)?.[1]);
    expect(exposure).toBeLessThanOrEqual(2.0);
  });

  it('is Type=notify with a watchdog and bounded memory', () => {
    const text = readFileSync(unit, 'utf8');
    for (const line of [
      'Type=notify',
      'WatchdogSec=',
      'MemoryMax=',
      'MemoryHigh=',
      'SystemCallErrorNumber=EPERM',
      'ProtectProc=invisible',
      'RemoveIPC=yes',
      'DevicePolicy=closed',
    ])
      expect(text).toContain(line);
  });
});

/** systemd's notification socket, played by socat receiving datagrams (what systemd reads). */
describe('the agent under Type=notify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-notify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says READY=1 once running and pings WATCHDOG=1 while its loop is healthy, then STOPPING=1', async () => {
    const socket = join(dir, 'notify.sock');
    const receiver = spawn('socat', ['-u', `UNIX-RECV:${socket}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'inherit'] });
    killOnExit(receiver);
    let received = '';
    receiver.stdout!.on('data', (chunk) => (received += chunk));
    await waitFor(() => spawnSync('test', ['-S', socket]).status === 0 || undefined, 'the notify socket');

    const port = await freePort();
    const agent = runAgent({
      config: { mqtt: { url: 'embedded', embeddedPort: await freePort() }, http: { host: '127.0.0.1', port } },
      env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' },
    });
    try {
      await waitForHealth(`http://127.0.0.1:${port}`, 200);
      // socat cannot answer systemd-notify's barrier, so each call waits out its timeout: be patient
      await waitFor(() => (received.includes('READY=1') && received.includes('WATCHDOG=1')) || undefined, 'READY=1 and WATCHDOG=1', 20_000);
      expect(received).toContain('STATUS=running');
      await terminate(agent.child);
      await waitFor(() => received.includes('STOPPING=1') || undefined, 'STOPPING=1', 20_000);
    } finally {
      await terminate(agent.child);
      await terminate(receiver);
    }
  }, 60_000);
});
