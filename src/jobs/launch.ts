import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export interface LaunchOptions {
  /** the resolved executable; never run through a shell */
  path: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export interface Exit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** A started program: it leads a process group of its own, stdin is /dev/null. */
export interface Launched {
  pid: number;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<Exit>;
}

/** Starts a program, or rejects with an error that has a `code` (ENOENT, EACCES…). */
export type Launcher = (options: LaunchOptions) => Promise<Launched>;

/** Node's child_process: forks the agent, then execs. The only way to start a program as another user. */
export const launchWithNode: Launcher = (o) =>
  new Promise((resolve, reject) => {
    const child = spawn(o.path, o.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: o.env, cwd: o.cwd, uid: o.uid, gid: o.gid, shell: false });
    if (child.pid === undefined) return void child.once('error', reject);
    child.on('error', () => {}); // a later error (none expected once started) must not crash the agent
    const exited = new Promise<Exit>((done) => child.once('exit', (exitCode, signal) => done({ exitCode, signal })));
    resolve({ pid: child.pid, stdout: child.stdout!, stderr: child.stderr!, exited });
  });

interface SpawnAddon {
  spawn(path: string, argv: string[], envp: string[], cwd: string): [pid: number, stdoutFd: number, stderrFd: number];
  reap(pid: number): [exitCode: number | null, signal: number] | null;
}

/** dist/native/spawn.node (scripts/build-native.mjs), from the bundle, from tsc's output or from the sources. */
function loadAddon(): SpawnAddon | null {
  for (const relative of ['../native/spawn.node', '../../native/spawn.node', '../../dist/native/spawn.node']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return createRequire(import.meta.url)(path) as SpawnAddon;
    } catch {
      return null; // built for another Node or platform: child_process it is
    }
  }
  return null;
}

/** Looked for when jobs first need it, not at the agent's start; null: not built. */
let loaded: SpawnAddon | null | undefined;
function addon(): SpawnAddon | null {
  if (loaded === undefined) loaded = loadAddon();
  return loaded;
}
const signalNames = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));
/** children started with posix_spawn, until their exit is seen */
const running = new Map<number, (exit: Exit) => void>();

function reapExited(): void {
  for (const [pid, done] of running) {
    let status: ReturnType<SpawnAddon['reap']>;
    try {
      status = addon()!.reap(pid);
    } catch {
      status = [null, 0]; // ECHILD: gone without a status we can read
    }
    if (!status) continue;
    running.delete(pid);
    done({ exitCode: status[0], signal: status[1] ? (signalNames.get(status[1]) ?? null) : null });
  }
}

/**
 * glibc's posix_spawn (native/spawn.c): clone(CLONE_VM | CLONE_VFORK), so starting a program
 * costs the same however large the agent is, where a fork copies its page tables first.
 * Exits are read on SIGCHLD (libuv reaps only the children it started itself).
 */
export const launchWithPosixSpawn: Launcher = async (o) => {
  const native = addon();
  if (!native) throw new Error('the posix_spawn addon is not built (npm run build)');
  if (o.uid !== undefined || o.gid !== undefined) throw new Error('posix_spawn cannot change the user; use launchWithNode');
  // before the child exists, so that no SIGCHLD of its can come unheard
  if (!process.listeners('SIGCHLD').includes(reapExited)) process.on('SIGCHLD', reapExited);
  const [pid, stdoutFd, stderrFd] = native.spawn(o.path, [o.path, ...o.args], Object.entries(o.env).map(([k, v]) => `${k}=${v}`), o.cwd ?? '');
  const exited = new Promise<Exit>((done) => running.set(pid, done));
  reapExited(); // it may be gone already
  const pipe = (fd: number) => new Socket({ fd, readable: true, writable: false });
  return { pid, stdout: pipe(stdoutFd), stderr: pipe(stderrFd), exited };
};

/** Whether this build has the posix_spawn addon (the jobs concern logs which way programs start). */
export const posixSpawnAvailable = (): boolean => addon() !== null;

/** posix_spawn where it is built and no other user is asked for; child_process otherwise. */
export const defaultLauncher: Launcher = (o) => (o.uid === undefined && o.gid === undefined && posixSpawnAvailable() ? launchWithPosixSpawn(o) : launchWithNode(o));
