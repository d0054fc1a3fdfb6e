import { z } from 'zod';
import { startWorker } from './worker.js';

/** The inventory document on <prefix>/<device>/inventory (schema 1), retained. */
export const INVENTORY_SCHEMA_VERSION = 1;
/** Bytes of an inventory payload at most, before it is parsed. */
export const MAX_INVENTORY_BYTES = 64 * 1024;

const text = z.string().max(256);
const bytes = z.number().int().min(0).max(2 ** 62);
export const Inventory = z.strictObject({
  schema: z.literal(INVENTORY_SCHEMA_VERSION),
  ts: z.number().int().positive().max(8.64e15),
  device: z.string().max(128).optional(),
  system: z.strictObject({ manufacturer: text, model: text, virtual: z.boolean() }).nullable(),
  os: z.strictObject({ distro: text, release: text, kernel: text, arch: text, hostname: text }).nullable(),
  cpu: z.strictObject({ manufacturer: text, brand: text, cores: z.number().int().min(0).max(65_536), physicalCores: z.number().int().min(0).max(65_536) }).nullable(),
  memory: z.strictObject({ totalBytes: bytes }).nullable(),
  disks: z.array(z.strictObject({ device: text, name: text, type: text, sizeBytes: bytes })).max(256).nullable(),
  gpus: z.array(z.strictObject({ vendor: text, model: text, memoryBytes: bytes.nullable() })).max(64).nullable(),
  /** the parts that could not be read, each with why (a part that failed is null above) */
  problems: z.array(z.string().max(512)).max(16),
});
export type Inventory = z.infer<typeof Inventory>;

export type DecodedInventory = { ok: true; inventory: Inventory } | { ok: false; reason: string };

/** Checks size, JSON and shape; a refusal says why in one line. */
export function decodeInventory(payload: Buffer): DecodedInventory {
  if (payload.length > MAX_INVENTORY_BYTES) return { ok: false, reason: `payload of ${payload.length} bytes is over ${MAX_INVENTORY_BYTES}` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  const result = Inventory.safeParse(json);
  if (result.success) return { ok: true, inventory: result.data };
  const issue = result.error.issues[0]!;
  return { ok: false, reason: `${issue.path.join('.') || 'payload'}: ${issue.message}` };
}

/** The device id in <prefix>/<device>/inventory, or undefined when the topic is not one. */
export function inventoryTopicDevice(topic: string, prefix: string): string | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/inventory')) return undefined;
  const device = topic.slice(prefix.length + 1, -'/inventory'.length);
  return /^[A-Za-z0-9:_-]{1,128}$/.test(device) ? device : undefined;
}

/**
 * Reads this host's inventory with systeminformation, in a worker thread that ends once it
 * answered: systeminformation costs 11–14 MiB of memory once loaded, and some of its calls run
 * programs (lsblk, dmidecode, nvidia-smi), so it stays off the agent's heap and off the sample
 * path. Each call is bounded by `callTimeoutMs` (a part that times out or fails is null, with
 * the reason in `problems`), and the whole read by twice that; the thread is ended then.
 */
export function readInventory(callTimeoutMs: number, now = Date.now()): Promise<Inventory> {
  const worker = startWorker('inventory-worker', { callTimeoutMs, ts: now });
  return new Promise<Inventory>((resolve, reject) => {
    const timer = setTimeout(() => (void worker.terminate(), reject(new Error(`the inventory was not read within ${2 * callTimeoutMs} ms`))), 2 * callTimeoutMs + 5000);
    worker.once('message', (inventory: Inventory) => (clearTimeout(timer), resolve(inventory)));
    worker.once('error', (error) => (clearTimeout(timer), reject(error)));
    worker.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the inventory thread exited (${code}) without an answer`))));
  }).finally(() => void worker.terminate());
}
