import { stat, statfs } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { join } from 'node:path';
import { FileReader } from './file-reader.js';
import { inSeries } from './in-series.js';
import { findNvidiaSmi, NvidiaSmi } from './gpu.js';
import {
  keyPart,
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseRss,
  parseStat,
  parseUptime,
  type CpuTimes,
  type DiskCounters,
  type Mount,
  type NetCounters,
} from './proc.js';
import { findSensors, readTemperatures, type Sensor } from './temperatures.js';

export type Values = Record<string, number>;

export interface SamplerOptions {
  /** where procfs and sysfs are mounted (tests point sysRoot at a fake tree) */
  procRoot?: string;
  sysRoot?: string;
  /** the sampling interval: nvidia-smi's loop runs at it */
  intervalMs: number;
  /** PATH to look for nvidia-smi on; '' for no GPUs */
  path?: string;
  /** file systems, interfaces and sensors read at most (keys stay bounded) */
  maxItems?: number;
}

/** The /proc files a sample reads, in the order sample() takes them. */
const PROC_FILES = ['stat', 'meminfo', 'loadavg', 'uptime', 'diskstats', 'net/dev', 'self/mounts', 'self/status'];

/** Temperature sensors are looked for again this often (a hwmon driver loaded late). */
const SENSOR_SCAN_EVERY = 60;

interface Previous {
  at: number;
  cpus: Map<string, CpuTimes>;
  disks: Map<string, DiskCounters>;
  net: Map<string, NetCounters>;
  agentCpu: NodeJS.CpuUsage;
}

/**
 * The host sampler: every figure comes from a small async read of /proc or /sys, or from
 * fs.statfs, so a sample spawns no process and never blocks the event loop (GPUs are read
 * from one long-lived nvidia-smi). Rates (CPU busy share, bytes per second) are taken
 * against the previous sample; the first sample has none except CPU, which is then the
 * share since boot.
 */
export class HostSampler {
  private previous: Previous | undefined;
  private sensors: Sensor[] = [];
  private samples = 0;
  private readonly devOfMount = new Map<string, string | null>();
  private readonly files = new FileReader();
  private mounted: { text: string; mounts: Mount[] } | undefined;
  private readonly loopDelay: IntervalHistogram;
  private readonly proc: string;
  private readonly sys: string;
  private readonly maxItems: number;

  private constructor(
    options: SamplerOptions,
    private readonly gpu: NvidiaSmi | undefined,
  ) {
    this.proc = options.procRoot ?? '/proc';
    this.sys = options.sysRoot ?? '/sys';
    this.maxItems = options.maxItems ?? 64;
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
  }

  static async create(options: SamplerOptions): Promise<HostSampler> {
    const smi = options.path === '' ? undefined : await findNvidiaSmi(options.path);
    return new HostSampler(options, smi ? new NvidiaSmi(smi, options.intervalMs) : undefined);
  }

  /** Whether nvidia-smi was found, and what is wrong with it if anything. */
  get gpuStatus(): { present: boolean; problem: string | null } {
    return { present: this.gpu !== undefined, problem: this.gpu?.problem ?? null };
  }

  async sample(now = Date.now()): Promise<Values> {
    if (this.samples++ % SENSOR_SCAN_EVERY === 0) {
      this.sensors = await findSensors(this.sys, this.maxItems);
      this.files.keepOnly([...PROC_FILES.map((f) => join(this.proc, f)), ...this.sensors.map((s) => s.file)]);
    }
    const read = (file: string) => this.files.read(join(this.proc, file)).then((text) => text ?? '');
    const [statText, memText, loadText, uptimeText, diskText, netText, mountText, statusText] = await inSeries(PROC_FILES, read);
    // Parsed in two slices (before and after the statfs calls), so neither holds the loop long.
    const values: Values = {};
    const cpus = parseStat(statText!);
    const agentCpu = process.cpuUsage();
    const previous = this.previous;
    const seconds = previous ? (now - previous.at) / 1000 : 0;

    this.cpu(values, cpus, previous?.cpus);
    memory(values, parseMeminfo(memText!));
    const load = parseLoadavg(loadText!);
    if (load) [values['load-1m'], values['load-5m'], values['load-15m']] = load;
    const uptime = parseUptime(uptimeText!);
    if (uptime !== undefined) values['uptime-seconds'] = uptime;
    const [disks] = await Promise.all([
      this.filesystems(values, this.mounts(mountText!), diskText!, previous?.disks, seconds),
      readTemperatures(this.sensors, values, (file) => this.files.read(file)),
    ]);
    const net = parseNetDev(netText!);
    this.network(values, net, previous?.net, seconds);
    this.agent(values, parseRss(statusText!), agentCpu, previous?.agentCpu, seconds);
    this.gpu?.read(values, now);
    this.previous = { at: now, cpus, disks, net, agentCpu };
    return values;
  }

  close(): void {
    this.gpu?.stop();
    this.files.close();
    this.loopDelay.disable();
  }

  private cpu(values: Values, cpus: Map<string, CpuTimes>, before: Map<string, CpuTimes> | undefined): void {
    let cores = 0;
    for (const [name, now] of cpus) {
      const then = before?.get(name);
      const total = now.total - (then?.total ?? 0);
      if (total <= 0) continue;
      const share = (field: keyof CpuTimes) => round(((now[field] - (then?.[field] ?? 0)) / total) * 100);
      if (name === 'cpu') {
        values['cpu-percent'] = share('busy');
        values['cpu-user-percent'] = share('user');
        values['cpu-system-percent'] = share('system');
        values['cpu-iowait-percent'] = share('iowait');
        values['cpu-steal-percent'] = share('steal');
      } else if (cores++ < 1024) values[`cpu-${name.slice(3)}-percent`] = share('busy');
    }
    if (cores > 0) values['cpu-count'] = cores;
  }

  /** Returns the block devices' counters (parsed from `diskText` once the statfs calls are back). */
  private async filesystems(
    values: Values,
    mounts: Mount[],
    diskText: string,
    before: Map<string, DiskCounters> | undefined,
    seconds: number,
  ): Promise<Map<string, DiskCounters>> {
    const stats = await inSeries(mounts, async (m) => [await statfs(m.path).catch(() => undefined), await this.deviceOf(m.path)] as const);
    const disks = parseDiskstats(diskText);
    const seen = new Set<string>();
    mounts.forEach((mount, i) => {
      const [fs, dev] = stats[i]!;
      const name = keyPart(mount.path);
      if (!fs || fs.blocks === 0 || seen.has(name)) return;
      seen.add(name);
      const k = (what: string) => `disk-${name}-${what}`;
      const used = (fs.blocks - fs.bfree) * fs.bsize;
      const available = fs.bavail * fs.bsize;
      values[k('total-bytes')] = fs.blocks * fs.bsize;
      values[k('used-bytes')] = used;
      values[k('free-bytes')] = available;
      values[k('used-percent')] = round((used / Math.max(1, used + available)) * 100); // as df counts it
      if (fs.files > 0) {
        values[k('inodes-total')] = fs.files;
        values[k('inodes-used')] = fs.files - fs.ffree;
        values[k('inodes-used-percent')] = round(((fs.files - fs.ffree) / fs.files) * 100);
      }
      const io = dev ? disks.get(dev) : undefined;
      const was = dev ? before?.get(dev) : undefined;
      if (io && was && seconds > 0) {
        values[k('read-bytes-per-second')] = round(Math.max(0, io.readBytes - was.readBytes) / seconds);
        values[k('write-bytes-per-second')] = round(Math.max(0, io.writeBytes - was.writeBytes) / seconds);
      }
    });
    return disks;
  }

  /** The mount table, parsed again only when it changed (it rarely does). */
  private mounts(text: string): Mount[] {
    if (this.mounted?.text !== text) this.mounted = { text, mounts: parseMounts(text, this.maxItems) };
    return this.mounted.mounts;
  }

  /** "major:minor" of the block device a mount point lives on, as /proc/diskstats names it. */
  private async deviceOf(path: string): Promise<string | null> {
    if (this.devOfMount.has(path)) return this.devOfMount.get(path)!;
    const dev = await stat(path).then(
      (s) => `${Math.floor(s.dev / 256) & 0xfff}:${(s.dev & 0xff) | ((s.dev >> 12) & 0xfff00)}`,
      () => null,
    );
    if (this.devOfMount.size < 4 * this.maxItems) this.devOfMount.set(path, dev);
    return dev;
  }

  private network(values: Values, net: Map<string, NetCounters>, before: Map<string, NetCounters> | undefined, seconds: number): void {
    let count = 0;
    for (const [name, now] of net) {
      const then = before?.get(name);
      if (name === 'lo' || !then || seconds <= 0 || count++ >= this.maxItems) continue;
      const rate = (field: keyof NetCounters) => round(Math.max(0, now[field] - then[field]) / seconds);
      const k = (what: string) => `net-${keyPart(name)}-${what}`;
      values[k('rx-bytes-per-second')] = rate('rxBytes');
      values[k('tx-bytes-per-second')] = rate('txBytes');
      values[k('rx-errors-per-second')] = rate('rxErrors');
      values[k('tx-errors-per-second')] = rate('txErrors');
      values[k('rx-drops-per-second')] = rate('rxDrops');
      values[k('tx-drops-per-second')] = rate('txDrops');
    }
  }

  private agent(values: Values, rss: number | undefined, cpu: NodeJS.CpuUsage, before: NodeJS.CpuUsage | undefined, seconds: number): void {
    // process.memoryUsage.rss() reads /proc/self/stat synchronously on the loop: only without the file
    values['agent-rss-bytes'] = rss ?? process.memoryUsage.rss();
    if (before && seconds > 0) values['agent-cpu-percent'] = round((cpu.user + cpu.system - before.user - before.system) / 1e4 / seconds);
    if (this.loopDelay.count > 0) {
      values['agent-event-loop-delay-p99-ms'] = round(this.loopDelay.percentile(99) / 1e6);
      values['agent-event-loop-delay-max-ms'] = round(this.loopDelay.max / 1e6);
    }
    this.loopDelay.reset();
  }
}

function memory(values: Values, m: Map<string, number>): void {
  const total = m.get('MemTotal');
  if (!total) return;
  // MemAvailable (Linux ≥ 3.14) is what can be had without swapping; used is the rest, as `free` shows it
  const available = m.get('MemAvailable') ?? (m.get('MemFree') ?? 0) + (m.get('Buffers') ?? 0) + (m.get('Cached') ?? 0);
  values['memory-total-bytes'] = total;
  values['memory-available-bytes'] = available;
  values['memory-used-bytes'] = total - available;
  values['memory-used-percent'] = round(((total - available) / total) * 100);
  const swapTotal = m.get('SwapTotal') ?? 0;
  values['swap-total-bytes'] = swapTotal;
  values['swap-used-bytes'] = swapTotal - (m.get('SwapFree') ?? 0);
  values['swap-used-percent'] = swapTotal > 0 ? round(((swapTotal - (m.get('SwapFree') ?? 0)) / swapTotal) * 100) : 0;
}

/** Two decimals: enough for percentages and rates, shorter JSON. */
function round(value: number): number {
  return Math.round(value * 100) / 100;
}
