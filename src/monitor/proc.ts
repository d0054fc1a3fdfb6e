/**
 * Parsers for the /proc files the sampler reads. Pure functions of the file's text, so the
 * sampler's only I/O is a handful of small async reads; each tolerates a short or odd file
 * (a field it cannot read is left out, never a thrown error).
 */

/** jiffies per CPU line of /proc/stat: "cpu" is the total, "cpu0".. each core. */
export interface CpuTimes {
  busy: number;
  total: number;
  user: number;
  system: number;
  iowait: number;
  steal: number;
}

export function parseStat(text: string): Map<string, CpuTimes> {
  const cpus = new Map<string, CpuTimes>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const [name, ...fields] = line.trim().split(/\s+/);
    const n = fields.map(Number);
    if (n.length < 4 || n.some((v) => !Number.isFinite(v))) continue;
    // user nice system idle iowait irq softirq steal (guest is already inside user)
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = n;
    const total = user + nice + system + idle + iowait + irq + softirq + steal;
    cpus.set(name!, { busy: total - idle - iowait, total, user: user + nice, system: system + irq + softirq, iowait, steal });
  }
  return cpus;
}

/** /proc/meminfo in bytes, by field name. */
export function parseMeminfo(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (match) fields.set(match[1]!, Number(match[2]) * (line.endsWith('kB') ? 1024 : 1));
  }
  return fields;
}

export function parseLoadavg(text: string): [number, number, number] | undefined {
  const n = text.trim().split(/\s+/).slice(0, 3).map(Number);
  return n.length === 3 && n.every(Number.isFinite) ? (n as [number, number, number]) : undefined;
}

export function parseUptime(text: string): number | undefined {
  const value = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(value) ? value : undefined;
}

/** The process's resident set in bytes, from /proc/<pid>/status (VmRSS, in kB). */
export function parseRss(text: string): number | undefined {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** Bytes read and written per block device, keyed "major:minor" (sectors are 512 bytes in this file). */
export interface DiskCounters {
  name: string;
  readBytes: number;
  writeBytes: number;
}

export function parseDiskstats(text: string): Map<string, DiskCounters> {
  const disks = new Map<string, DiskCounters>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const readSectors = Number(f[5]);
    const writeSectors = Number(f[9]);
    if (!Number.isFinite(readSectors) || !Number.isFinite(writeSectors)) continue;
    disks.set(`${f[0]}:${f[1]}`, { name: f[2]!, readBytes: readSectors * 512, writeBytes: writeSectors * 512 });
  }
  return disks;
}

export interface NetCounters {
  rxBytes: number;
  rxErrors: number;
  rxDrops: number;
  txBytes: number;
  txErrors: number;
  txDrops: number;
}

export function parseNetDev(text: string): Map<string, NetCounters> {
  const interfaces = new Map<string, NetCounters>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue;
    const name = line.slice(0, colon).trim();
    const n = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || n.length < 16 || n.some((v) => !Number.isFinite(v))) continue;
    interfaces.set(name, { rxBytes: n[0]!, rxErrors: n[2]!, rxDrops: n[3]!, txBytes: n[8]!, txErrors: n[10]!, txDrops: n[11]! });
  }
  return interfaces;
}

export interface Mount {
  source: string;
  path: string;
  type: string;
}

/** The same file systems node-exporter leaves out by default: kernel, virtual and container layers. */
const PSEUDO_TYPES =
  /^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|fuse\.lxcfs|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs|tmpfs|ramfs|efivarfs)$/;
const PSEUDO_PATHS = /^\/(dev|proc|run|sys|var\/lib\/docker\/.+|var\/lib\/containers\/storage\/.+|mnt\/sandboxing)($|\/)/;

/** Mounted file systems worth watching, one per device (bind mounts of the same one are left out).
 * The root file system counts whatever its type (an overlay in a container). */
export function parseMounts(text: string, limit: number): Mount[] {
  const mounts: Mount[] = [];
  const sources = new Set<string>();
  for (const line of text.split('\n')) {
    const [source, rawPath, type] = line.split(' ');
    if (!source || !rawPath || !type) continue;
    const path = rawPath.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    const isRoot = path === '/';
    if (!isRoot && (PSEUDO_TYPES.test(type) || PSEUDO_PATHS.test(path))) continue;
    if (sources.has(source) && source.startsWith('/')) continue;
    if (isRoot) {
      const earlier = mounts.findIndex((m) => m.path === '/');
      if (earlier >= 0) mounts.splice(earlier, 1); // the last mount on / is the one in effect
    }
    sources.add(source);
    mounts.push({ source, path, type });
    if (mounts.length >= limit) break;
  }
  return mounts;
}

/** The name part of a key: "/" is root, "/var/lib" is var-lib, "Core 0" is core-0. */
export function keyPart(name: string): string {
  if (name === '/') return 'root';
  const part = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return part || 'unnamed';
}
