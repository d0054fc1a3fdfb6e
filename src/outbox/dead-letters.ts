import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutboxMessage } from './record.js';

/** What is kept of a message the broker would not take: everything but the payload bytes. */
export interface DeadLetter {
  id: string;
  topic: string;
  qos: 0 | 1;
  retain: boolean;
  payloadBytes: number;
  reason: string;
  /** ISO time it was moved aside */
  movedAt: string;
}

interface DeadLetterFile extends Omit<DeadLetter, 'payloadBytes'> {
  /** base64 */
  payload: string;
}

export const DEAD_LETTER_ID = /^dl-\d{13}-[0-9a-f]{8}$/;

/**
 * Messages moved out of the outbox because they kept ending the connection: one JSON file
 * each in <stateDir>/outbox-dead-letters, written atomically (temporary file, fdatasync,
 * rename, directory sync), so a dead letter survives kill -9 and restarts. Bounded: at
 * `max`, the oldest is discarded (counted) to make room.
 */
export class DeadLetters {
  /** oldest first; payloads stay on disk */
  private readonly index = new Map<string, DeadLetter>();
  discarded = 0;

  private constructor(
    private readonly dir: string,
    private readonly max: number,
  ) {}

  static async open(dir: string, max: number): Promise<{ store: DeadLetters; unreadable: string[] }> {
    await mkdir(dir, { recursive: true });
    const store = new DeadLetters(dir, max);
    const unreadable: string[] = [];
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => {});
      const id = name.replace(/\.json$/, '');
      if (!DEAD_LETTER_ID.test(id) || !name.endsWith('.json')) continue;
      try {
        const { payload, ...letter } = JSON.parse(await readFile(join(dir, name), 'utf8')) as DeadLetterFile;
        store.index.set(id, { ...letter, id, payloadBytes: Buffer.from(payload, 'base64').length });
      } catch {
        unreadable.push(name); // left in place for a person to look at
      }
    }
    return { store, unreadable };
  }

  get size(): number {
    return this.index.size;
  }

  list(): DeadLetter[] {
    return [...this.index.values()];
  }

  /** One dead letter with its payload, or undefined. */
  async get(id: string): Promise<{ letter: DeadLetter; message: OutboxMessage } | undefined> {
    const letter = this.index.get(id);
    if (!letter) return undefined;
    const file = JSON.parse(await readFile(this.path(id), 'utf8')) as DeadLetterFile;
    return { letter, message: { topic: file.topic, payload: Buffer.from(file.payload, 'base64'), qos: file.qos, retain: file.retain } };
  }

  /** Stores `message` durably; resolves once it is on disk. */
  async add(message: OutboxMessage, reason: string): Promise<DeadLetter> {
    const now = Date.now();
    const id = `dl-${String(now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
    const letter: DeadLetter = {
      id,
      topic: message.topic,
      qos: message.qos,
      retain: message.retain,
      payloadBytes: message.payload.length,
      reason,
      movedAt: new Date(now).toISOString(),
    };
    const { payloadBytes: _, ...kept } = letter;
    const body: DeadLetterFile = { ...kept, payload: message.payload.toString('base64') };
    const tmp = `${this.path(id)}.tmp`;
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(JSON.stringify(body)); // writeFile goes on after short writes
      await file.datasync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path(id));
    await syncDir(this.dir);
    this.index.set(id, letter);
    while (this.index.size > this.max) {
      const oldest = this.index.keys().next().value as string;
      await this.remove(oldest);
      this.discarded++;
    }
    return letter;
  }

  /** Deletes a dead letter; false when there is none by that id. */
  async remove(id: string): Promise<boolean> {
    if (!this.index.delete(id)) return false;
    await unlink(this.path(id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    return true;
  }

  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.datasync().catch(() => {}); // some file systems refuse to sync a directory
  } finally {
    await handle.close();
  }
}
