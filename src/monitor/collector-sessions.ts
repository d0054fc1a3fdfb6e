import { readFile, rename, writeFile } from 'node:fs/promises';
import mqtt, { type IClientOptions } from 'mqtt';
import { z } from 'zod';
import type { CollectorConnection } from './collector-plan.js';

/** The record of the collector's connections (<stateDir>/collector-sessions.json): a few KB. */
const MAX_RECORD_BYTES = 64 * 1024;
const Record = z.object({
  connections: z.array(z.object({ clientId: z.string().min(1).max(256), topics: z.array(z.string().max(512)).max(4) })).max(128),
});

/** The connections an earlier start used; undefined when there is no readable record. */
export async function readSessionRecord(file: string): Promise<CollectorConnection[] | undefined> {
  try {
    const text = await readFile(file, 'utf8');
    if (text.length > MAX_RECORD_BYTES) return undefined;
    const parsed = Record.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.connections : undefined;
  } catch {
    return undefined;
  }
}

/** Written aside and renamed, so a crash leaves the old record or the new one. */
export async function writeSessionRecord(file: string, connections: CollectorConnection[]): Promise<void> {
  await writeFile(`${file}.tmp`, `${JSON.stringify({ connections })}\n`);
  await rename(`${file}.tmp`, file);
}

/**
 * Ends the persistent session of `clientId` on the broker: a connection with a clean session
 * makes the broker discard the old one, its subscriptions and what it queued.
 */
export async function endSession(url: string, options: IClientOptions, clientId: string): Promise<void> {
  const client = await mqtt.connectAsync(url, { ...options, clientId, clean: true, will: undefined, reconnectPeriod: 0, connectTimeout: 10_000 });
  await client.endAsync();
}
