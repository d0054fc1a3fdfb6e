import { spawn, type ChildProcess } from 'node:child_process';
import { constants, existsSync, mkdtempSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReadStream } from 'node:tty';
import { killOnExit } from './mosquitto.js';
import { waitFor } from './ports.js';
import { terminate } from './processes.js';
import { requirePeer } from './peers.js';

/**
 * A real pseudo-terminal pair from socat: the agent opens `near` as its serial port, the test
 * writes what the "device" sends into `far`. Stopping it (by PID) is the far end closing;
 * `restart` brings the same link names back, as a device reconnecting.
 */
export class PtyPair {
  private child: ChildProcess | undefined;
  private writer: FileHandle | undefined;
  private readonly readers: ReadStream[] = [];
  readonly near: string;
  readonly far: string;

  private constructor(dir: string, name: string) {
    this.near = join(dir, `${name}-near`);
    this.far = join(dir, `${name}-far`);
  }

  static async start(name = 'pty', dir = mkdtempSync(join(tmpdir(), 'edgevisor-pty-'))): Promise<PtyPair> {
    const pair = new PtyPair(dir, name);
    await pair.restart();
    return pair;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async restart(): Promise<void> {
    const child = spawn(requirePeer('socat'), [`pty,raw,echo=0,link=${this.far}`, `pty,raw,echo=0,link=${this.near}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    killOnExit(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    this.child = child;
    await waitFor(() => existsSync(this.near) && existsSync(this.far), `socat ptys ${this.near}: ${stderr}`);
  }

  /** Writes as the device would (raw bytes into the far end). */
  async write(data: string | Buffer): Promise<void> {
    this.writer ??= await open(this.far, 'w');
    await this.writer.write(typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** What the agent wrote to the port, as the device reads it from the far end (read from here on). */
  reader(): { text: () => string; close: () => void } {
    // a tty stream (libuv's non-blocking tty handle), not a file read that would hold a pool thread
    const stream = new ReadStream(openSync(this.far, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK));
    this.readers.push(stream);
    const chunks: Buffer[] = [];
    stream.on('data', (chunk) => chunks.push(Buffer.from(chunk)));
    stream.on('error', () => {}); // EIO when the agent closes its end
    return { text: () => Buffer.concat(chunks).toString('utf8'), close: () => void stream.destroy() };
  }

  /** The far end closes: socat exits, both ptys vanish. */
  async stop(): Promise<void> {
    await this.writer?.close().catch(() => {});
    this.writer = undefined;
    for (const r of this.readers.splice(0)) r.destroy();
    await terminate(this.child);
    this.child = undefined;
  }
}
