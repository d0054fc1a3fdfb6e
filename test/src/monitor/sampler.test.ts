import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseGpuLine } from '../../../src/monitor/gpu.js';
import { inSeries } from '../../../src/monitor/in-series.js';
import { parseMounts, parseNetDev, parseRss } from '../../../src/monitor/proc.js';
import { HostSampler } from '../../../src/monitor/sampler.js';
import { waitFor } from '../../support/ports.js';

const samplers: HostSampler[] = [];
afterEach(() => {
  for (const s of samplers.splice(0)) s.close();
});
const sampler = async (options: Parameters<typeof HostSampler.create>[0]) => {
  const s = await HostSampler.create(options);
  samplers.push(s);
  return s;
};

/** A fake sysfs with two thermal zones of the same type and a hwmon chip with a labelled and an unlabelled sensor. */
function fakeSysfs(): string {
  const sys = mkdtempSync(join(tmpdir(), 'edgevisor-monitor-sys-'));
  const file = (path: string, text: string) => {
    mkdirSync(join(sys, path, '..'), { recursive: true });
    writeFileSync(join(sys, path), `${text}\n`);
  };
  file('class/thermal/thermal_zone0/type', 'cpu-thermal');
  file('class/thermal/thermal_zone0/temp', '48312');
  file('class/thermal/thermal_zone1/type', 'cpu-thermal');
  file('class/thermal/thermal_zone1/temp', '50000');
  file('class/thermal/thermal_zone2/type', 'broken');
  file('class/thermal/thermal_zone2/temp', 'oops');
  file('class/hwmon/hwmon0/name', 'coretemp');
  file('class/hwmon/hwmon0/temp1_input', '61000');
  file('class/hwmon/hwmon0/temp1_label', 'Core 0');
  file('class/hwmon/hwmon0/temp2_input', '-5500');
  return sys;
}

/** A fake nvidia-smi on a PATH of its own: in loop mode it prints two GPUs, then again every interval. */
function fakeNvidiaSmi(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-smi-'));
  writeFileSync(join(dir, 'args'), '');
  writeFileSync(
    join(dir, 'nvidia-smi'),
    `#!/bin/sh\necho "$@" > ${dir}/args\nwhile true; do\n  echo "0, 37, 1024, 16384, 55, 71.20"\n  echo "1, [N/A], 0, 8192, 40, [N/A]"\n  sleep 0.2\ndone\n`,
  );
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  return dir;
}

describe('host sampler', () => {
  it('reads the always-present keys and the root file system from the real /proc', async () => {
    const s = await sampler({ intervalMs: 1000, path: '' });
    await s.sample(Date.now() - 1000);
    // rates are deltas of jiffies (10 ms): a second sample at once may see a core that did not tick
    await new Promise((resolve) => setTimeout(resolve, 200));
    const values = await s.sample();
    for (const key of [
      'cpu-percent',
      'memory-used-bytes',
      'memory-used-percent',
      'uptime-seconds',
      'load-1m',
      'cpu-0-percent',
      'agent-rss-bytes',
      'disk-root-used-bytes',
      'disk-root-inodes-total',
    ]) {
      expect(values[key], key).toBeTypeOf('number');
    }
    // read from /proc/self/status off the loop: the same figure Node reads on it, give or take what the test allocated meanwhile
    expect(Math.abs(values['agent-rss-bytes']! - process.memoryUsage.rss())).toBeLessThan(64 * 1024 * 1024);
    expect(values['cpu-percent']).toBeGreaterThanOrEqual(0);
    expect(values['cpu-percent']).toBeLessThanOrEqual(100);
    expect(values['memory-used-bytes']).toBeLessThan(values['memory-total-bytes']!);
    expect(Object.values(values).every(Number.isFinite)).toBe(true);
    // a second sample has rates for every interface but loopback
    const interfaces = Object.keys(values).filter((k) => k.startsWith('net-') && k.endsWith('-rx-bytes-per-second'));
    expect(interfaces.length).toBeGreaterThan(0);
    expect(interfaces).not.toContain('net-lo-rx-bytes-per-second');
    expect(Object.keys(values).some((k) => k.startsWith('gpu-'))).toBe(false);
  });

  it('reads thermal zones and hwmon sensors from a configured sysfs root, leaving out a sensor that reads nonsense', async () => {
    const s = await sampler({ intervalMs: 1000, path: '', sysRoot: fakeSysfs() });
    const values = await s.sample();
    const temperatures = Object.fromEntries(Object.entries(values).filter(([k]) => k.startsWith('temperature-')));
    expect(temperatures).toEqual({
      'temperature-cpu-thermal-celsius': 48.312,
      'temperature-cpu-thermal-zone1-celsius': 50,
      'temperature-coretemp-core-0-celsius': 61,
      'temperature-coretemp-temp2-celsius': -5.5,
    });
  });

  it('has no temperature keys and no error when sysfs has no sensors', async () => {
    const s = await sampler({ intervalMs: 1000, path: '', sysRoot: mkdtempSync(join(tmpdir(), 'edgevisor-empty-sys-')) });
    const values = await s.sample();
    expect(Object.keys(values).filter((k) => k.startsWith('temperature-'))).toEqual([]);
    expect(values['cpu-percent']).toBeTypeOf('number');
  });

  it('reads GPUs from one long-lived nvidia-smi in loop mode, leaving out [N/A] fields', async () => {
    const dir = fakeNvidiaSmi();
    const s = await sampler({ intervalMs: 200, path: dir });
    expect(s.gpuStatus.present).toBe(true);
    await s.sample(); // starts nvidia-smi
    const values = await waitFor(async () => {
      const v = await s.sample();
      return v['gpu-1-memory-total-bytes'] !== undefined ? v : undefined;
    }, 'GPU keys');
    expect(values['gpu-0-utilization-percent']).toBe(37);
    expect(values['gpu-0-memory-used-bytes']).toBe(1024 * 1024 * 1024);
    expect(values['gpu-0-memory-used-percent']).toBe(6.25);
    expect(values['gpu-0-temperature-celsius']).toBe(55);
    expect(values['gpu-0-power-watts']).toBe(71.2);
    expect(values['gpu-1-utilization-percent']).toBeUndefined();
    expect(values['gpu-1-power-watts']).toBeUndefined();
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(dir, 'args'), 'utf8')).toContain('--format=csv,noheader,nounits -lms 200');
  });

  it('has no GPU keys when nvidia-smi is not on PATH', async () => {
    const s = await sampler({ intervalMs: 1000, path: mkdtempSync(join(tmpdir(), 'edgevisor-nopath-')) });
    expect(s.gpuStatus.present).toBe(false);
    const values = await s.sample();
    expect(Object.keys(values).some((k) => k.startsWith('gpu-'))).toBe(false);
  });
});

describe('/proc parsers', () => {
  it('keeps real file systems once each, the root whatever its type, and leaves out pseudo ones', () => {
    const mounts = parseMounts(
      [
        'overlay / overlay rw 0 0',
        'proc /proc proc rw 0 0',
        'tmpfs /run tmpfs rw 0 0',
        '/dev/sda1 /boot/firmware vfat rw 0 0',
        '/dev/sda2 /var/lib/with\\040space ext4 rw 0 0',
        '/dev/sda2 /mnt/bind ext4 rw 0 0',
        'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0',
      ].join('\n'),
      64,
    );
    expect(mounts.map((m) => m.path)).toEqual(['/', '/boot/firmware', '/var/lib/with space']);
  });

  it('reads counters of each interface from /proc/net/dev', () => {
    const text = `Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n  eth0: 100 2 3 4 0 0 0 0 200 5 6 7 0 0 0 0\n`;
    expect(parseNetDev(text).get('eth0')).toEqual({ rxBytes: 100, rxErrors: 3, rxDrops: 4, txBytes: 200, txErrors: 6, txDrops: 7 });
  });

  it('refuses a malformed nvidia-smi line', () => {
    expect(parseGpuLine('garbage')).toBeUndefined();
    expect(parseGpuLine('99, 1, 2, 3, 4, 5')).toBeUndefined();
  });
});

describe('the parts of a sample', () => {
  it("reads a process's resident set from its status file, and nothing from a file without one", () => {
    expect(parseRss('Name:\tnode\nVmPeak:\t 900000 kB\nVmRSS:\t   76800 kB\nThreads:\t11\n')).toBe(76800 * 1024);
    expect(parseRss('Name:\tkthreadd\nThreads:\t1\n')).toBeUndefined();
  });

  it('runs reads one at a time, in order, so the threadpool never holds more than one of them', async () => {
    let running = 0;
    let most = 0;
    const results = await inSeries([30, 10, 20], async (ms) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, ms));
      running--;
      return ms * 2;
    });
    expect(results).toEqual([60, 20, 40]);
    expect(most).toBe(1);
  });
});
