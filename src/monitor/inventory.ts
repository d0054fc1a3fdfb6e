import { z } from 'zod';
import { spawn } from 'node:child_process';
import { scriptBeside } from './worker.js';

/** The inventory document on <prefix>/<device>/inventory (schema 1), retained. */
export const INVENTORY_SCHEMA_VERSION = 1;
/** Bytes of an inventory payload at most, before it is parsed. */
export const MAX_INVENTORY_BYTES = 64 * 1024;

const text = z.string().max(256);
const bytes = z
  .number()
  .int()
  .min(0)
  .max(2 ** 62);
export const Inventory = z.strictObject({
  schema: z.literal(INVENTORY_SCHEMA_VERSION),
  ts: z.number().int().positive().max(8.64e15),
  device: z.string().max(128).optional(),
  system: z.strictObject({ manufacturer: text, model: text, virtual: z.boolean() }).nullable(),
  os: z.strictObject({ distro: text, release: text, kernel: text, arch: text, hostname: text }).nullable(),
  cpu: z
    .strictObject({ manufacturer: text, brand: text, cores: z.number().int().min(0).max(65_536), physicalCores: z.number().int().min(0).max(65_536) })
    .nullable(),
  memory: z.strictObject({ totalBytes: bytes }).nullable(),
  disks: z
    .array(z.strictObject({ device: text, name: text, type: text, sizeBytes: bytes }))
    .max(256)
    .nullable(),
  gpus: z
    .array(z.strictObject({ vendor: text, model: text, memoryBytes: bytes.nullable() }))
    .max(64)
    .nullable(),
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
 * Reads this host's inventory with systeminformation, in a child process that exits once it
 * answered: systeminformation costs 11–14 MiB of memory once loaded (a worker thread's share
 * of it stays in the agent's RSS after the thread ends), and some of its calls run programs
 * (lsblk, dmidecode, nvidia-smi), so it stays out of the agent and off the sample path. This
 * runs at start and then every few hours. Each call is bounded by `callTimeoutMs` (a part that
 * times out or fails is null, with the reason in `problems`); the process is killed after
 * twice that, and its answer is checked like a peer's.
 */
export function readInventory(callTimeoutMs: number, now = Date.now()): Promise<Inventory> {
  const { script, execArgv } = scriptBeside('inventory-worker');
  const child = spawn(process.execPath, [...execArgv, script, String(callTimeoutMs), String(now)], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise<Inventory>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), 2 * callTimeoutMs + 5000);
    child.stdout!.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= MAX_INVENTORY_BYTES) chunks.push(chunk);
      else child.kill('SIGKILL');
    });
    child.once('error', (error) => (clearTimeout(timer), reject(error)));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const decoded = decodeInventory(Buffer.concat(chunks));
      if (decoded.ok) return resolve(decoded.inventory);
      reject(
        new Error(
          signal
            ? `the inventory reader was stopped (${signal}): it took over ${2 * callTimeoutMs + 5000} ms or wrote too much`
            : `the inventory reader exited (${code}): ${decoded.reason}`,
        ),
      );
    });
  });
}
