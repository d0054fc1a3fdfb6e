import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';
import { terminate } from './processes.js';
import { requirePeer } from './peers.js';

export interface MosquittoOptions {
  /** extra lines for the listener, e.g. password_file or TLS settings */
  listener?: string[];
  port?: number;
  /** keep sessions and queued messages across a stop and start (saved at a clean stop) */
  persistent?: boolean;
}

/** A real mosquitto on a loopback port of its own, which the test can stop and start again on the same port. */
export class Mosquitto {
  private process?: ChildProcess;
  private constructor(
    readonly port: number,
    private readonly configFile: string,
  ) {}

  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-mosquitto-'));
    const configFile = join(dir, 'mosquitto.conf');
    const persistence = options.persistent
      ? ['persistence true', `persistence_location ${dir}/`, 'max_queued_messages 0', 'max_inflight_messages 100']
      : ['persistence false'];
    const lines = [`listener ${port} 127.0.0.1`, ...(options.listener ?? ['allow_anonymous true']), ...persistence, 'log_dest stderr', 'log_type error'];
    lines.push('set_tcp_nodelay true'); // mosquitto keeps Nagle on by default: ~40 ms per request/answer
    // As root, mosquitto drops to its own user, which could not read the test's temporary files.
    if (process.getuid?.() === 0) lines.unshift('user root');
    writeFileSync(configFile, `${lines.join('\n')}\n`);
    const broker = new Mosquitto(port, configFile);
    await broker.resume();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Starts (again) on the same port. */
  async resume(): Promise<void> {
    const child = spawn(mosquittoBinary(), ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    killOnExit(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    this.process = child;
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${stderr.trim()}`))));
    await Promise.race([waitFor(() => canConnect(this.port), `mosquitto on port ${this.port}`), exited]);
    exited.catch(() => {});
  }

  /** Stops it (SIGTERM) and waits until it is gone. */
  async stop(): Promise<void> {
    await terminate(this.process);
    this.process = undefined;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A failed test must not leave its processes behind: they go when the test worker exits. */
export function killOnExit(child: ChildProcess): void {
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
}

export function mosquittoBinary(): string {
  return requirePeer('mosquitto');
}
