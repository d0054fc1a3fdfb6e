/**
 * The inventory reader's process (see readInventory in inventory.ts): node <this> <callTimeoutMs> <ts>
 * loads systeminformation, reads each part with a timeout, writes one JSON document on
 * stdout and exits.
 */
import si from 'systeminformation';
import { INVENTORY_SCHEMA_VERSION, type Inventory } from './inventory.js';

const callTimeoutMs = Number(process.argv[2]) || 15_000;
const ts = Number(process.argv[3]) || Date.now();
const problems: string[] = [];
const cut = (value: unknown, max = 256) =>
  String(value ?? '')
    .trim()
    .slice(0, max);
const int = (value: unknown) => (Number.isFinite(Number(value)) && Number(value) >= 0 ? Math.round(Number(value)) : 0);

/** One systeminformation call, bounded; null (and a problem noted) when it fails or takes too long. */
async function part<T, R>(name: string, call: () => Promise<T>, map: (value: T) => R): Promise<R | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${callTimeoutMs} ms`)), callTimeoutMs)));
    return map(await Promise.race([call(), timeout]));
  } catch (error) {
    problems.push(`${name}: ${cut((error as Error)?.message ?? error, 400)}`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Physical disks: diskLayout (lsblk, smartctl), or the block devices of type disk where it finds none (no udev in a container). */
async function disks(): Promise<Inventory['disks']> {
  const layout = await si.diskLayout();
  if (layout.length > 0) return layout.slice(0, 256).map((d) => ({ device: cut(d.device), name: cut(d.name), type: cut(d.type), sizeBytes: int(d.size) }));
  const blocks = await si.blockDevices();
  return blocks
    .filter((b) => b.type === 'disk' && int(b.size) > 0)
    .slice(0, 256)
    .map((b) => ({ device: cut(b.device ?? `/dev/${b.name}`), name: cut(b.model || b.name), type: cut(b.physical), sizeBytes: int(b.size) }));
}

const [system, os, cpu, memory, diskList, gpus] = await Promise.all([
  part(
    'system',
    () => si.system(),
    (s) => ({ manufacturer: cut(s.manufacturer), model: cut(s.model), virtual: s.virtual === true }),
  ),
  part(
    'os',
    () => si.osInfo(),
    (o) => ({ distro: cut(o.distro), release: cut(o.release), kernel: cut(o.kernel), arch: cut(o.arch), hostname: cut(o.hostname) }),
  ),
  part(
    'cpu',
    () => si.cpu(),
    (c) => ({ manufacturer: cut(c.manufacturer), brand: cut(c.brand), cores: int(c.cores), physicalCores: int(c.physicalCores) }),
  ),
  part(
    'memory',
    () => si.mem(),
    (m) => ({ totalBytes: int(m.total) }),
  ),
  part('disks', disks, (d) => d),
  part(
    'gpus',
    () => si.graphics(),
    (g) => g.controllers.slice(0, 64).map((c) => ({ vendor: cut(c.vendor), model: cut(c.model), memoryBytes: c.vram ? int(c.vram) * 1024 * 1024 : null })),
  ),
]);
const inventory: Inventory = { schema: INVENTORY_SCHEMA_VERSION, ts, system, os, cpu, memory, disks: diskList, gpus, problems: problems.slice(0, 16) };
process.stdout.write(`${JSON.stringify(inventory)}\n`, () => process.exit(0));
