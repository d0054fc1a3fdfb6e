import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { bootId, identify, killRecordedGroup } from '../../../src/jobs/process-group.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function group() {
  const child = spawn('/bin/sh', ['-c', 'sleep 30 & sleep 30'], { detached: true, stdio: 'ignore' });
  return child;
}

describe('recorded process groups', () => {
  it('kills what is left of the same group in the same boot', async () => {
    const child = group();
    const identity = identify(child.pid!);
    expect(identity.bootId).toBe(bootId());
    await new Promise((r) => setTimeout(r, 100));
    const exited = new Promise((r) => child.once('exit', r));
    expect(killRecordedGroup(identity)).toBeGreaterThanOrEqual(2);
    await exited;
    expect(alive(child.pid!)).toBe(false);
  });

  it('kills nothing when the boot differs (ids are reused after a reboot) or the processes are older than the record', async () => {
    const child = group();
    const identity = identify(child.pid!);
    await new Promise((r) => setTimeout(r, 100));
    expect(killRecordedGroup(identity, 'another-boot')).toBe(0);
    expect(killRecordedGroup({ ...identity, startTicks: identity.startTicks + 1_000_000 })).toBe(0);
    expect(alive(child.pid!)).toBe(true);
    process.kill(-child.pid!, 'SIGKILL');
  });
});
