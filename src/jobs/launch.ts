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

const ADDON_PATHS = ['../native/spawn.node', '../../native/spawn.node', '../../dist/native/spawn.node'];

/** dist/native/spawn.node (npm run build:native), from the bundle, from tsc's output or from the sources. */
function loadAddon(): { addon: SpawnAddon } | { reason: string } {
  for (const relative of ADDON_PATHS) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return { addon: createRequire(import.meta.url)(path) as SpawnAddon };
    } catch (error) {
      return { reason: `${path} cannot be loaded (${String((error as Error).message).split('\n')[0]}); rebuild it with npm run build:native` };
    }
  }
  return { reason: "the posix_spawn addon is not built (npm run build:native needs a C compiler and Node's headers)" };
}

/** Loaded on first use (posix_spawn is opt-in): the addon, or why there is none. */
let loaded: ReturnType<typeof loadAddon> | undefined;
function addon(): SpawnAddon | null {
  loaded ??= loadAddon();
  return 'addon' in loaded ? loaded.addon : null;
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
  if (!native) throw new Error('the posix_spawn addon is not built (npm run build:native)');
  if (o.uid !== undefined || o.gid !== undefined) throw new Error('posix_spawn cannot change the user; use launchWithNode');
  // before the child exists, so that no SIGCHLD of its can come unheard
  if (!process.listeners('SIGCHLD').includes(reapExited)) process.on('SIGCHLD', reapExited);
  const [pid, stdoutFd, stderrFd] = native.spawn(
    o.path,
    [o.path, ...o.args],
    Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
    o.cwd ?? '',
  );
  const exited = new Promise<Exit>((done) => running.set(pid, done));
  reapExited(); // it may be gone already
  const pipe = (fd: number) => new Socket({ fd, readable: true, writable: false });
  return { pid, stdout: pipe(stdoutFd), stderr: pipe(stderrFd), exited };
};

/** Whether the posix_spawn addon is built and loads here. */
export const posixSpawnAvailable = (): boolean => addon() !== null;

/** The ways a job's program can be started (config jobs.launcher). */
export const LAUNCHERS = ['child_process', 'posix_spawn'] as const;
export type LauncherName = (typeof LAUNCHERS)[number];

/**
 * The launcher named by the config: child_process (the default, works everywhere, the only
 * one that can run a step as another user) or posix_spawn (opt-in, needs the addon). A
 * configured launcher that cannot load is an error, never a silent fallback.
 */
export function launcherFor(name: LauncherName): Launcher {
  if (name === 'child_process') return launchWithNode;
  if (!addon()) throw new Error(`jobs.launcher is "posix_spawn" but ${loaded && 'reason' in loaded ? loaded.reason : 'the addon is missing'}`);
  // runAsUser needs a fork that changes uid and gid first: child_process does that
  return (o) => (o.uid === undefined && o.gid === undefined ? launchWithPosixSpawn(o) : launchWithNode(o));
}
