import { spawn } from 'node:child_process';
import { TailBuffer } from './tail-buffer.js';

export interface RunOptions {
  /** the resolved executable; never run through a shell */
  path: string;
  args: string[];
  timeoutMs: number;
  /** time between TERM and KILL for the process group */
  graceMs?: number;
  env: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** bytes of the end of each stream kept (the rest is counted, not stored) */
  outputCapBytes?: number;
  signal?: AbortSignal;
  /** the process group id, as soon as it exists: a job record keeps it for crash recovery */
  onSpawn?: (pgid: number) => void;
}

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** the program could not be started at all (ENOENT, EACCES…) */
  spawnError?: string;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  stderrLines: number;
  durationMs: number;
}

/** How long the output pipes may stay open after the program exited (a background child
 * still holding them) before the rest of its process group is killed. */
const PIPE_GRACE_MS = 1000;

/**
 * Runs one program in a process group of its own, without a shell, with the given
 * environment only. stdout and stderr are drained at the same time into bounded tails, so
 * no output volume or order can block the child or exhaust memory. On timeout or abort the
 * whole group gets SIGTERM, then SIGKILL after `graceMs`; after the program exits, whatever
 * it left running in its group is killed too, so a step never outlives itself.
 */
export function runProcess(options: RunOptions): Promise<ProcessResult> {
  const started = performance.now();
  const cap = options.outputCapBytes ?? 64 * 1024;
  const stdout = new TailBuffer(cap);
  const stderr = new TailBuffer(cap);
  let timedOut = false;
  let aborted = false;

  return new Promise<ProcessResult>((resolve) => {
    const child = spawn(options.path, options.args, {
      detached: true, // its own process group, so the group can be signalled as one
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      shell: false,
    });
    const pgid = child.pid;
    const timers: NodeJS.Timeout[] = [];
    const signalGroup = (signal: NodeJS.Signals) => {
      if (pgid === undefined) return;
      try {
        process.kill(-pgid, signal);
      } catch {
        // ESRCH: nothing left in the group
      }
    };
    const stop = () => {
      signalGroup('SIGTERM');
      timers.push(setTimeout(() => signalGroup('SIGKILL'), options.graceMs ?? 5000));
    };
    const finish = (extra: Partial<ProcessResult>) => {
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        exitCode: null,
        signal: null,
        timedOut,
        aborted,
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutBytes: stdout.totalBytes,
        stderrBytes: stderr.totalBytes,
        stderrLines: stderr.lines,
        durationMs: Math.round(performance.now() - started),
        ...extra,
      });
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };

    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', (error: NodeJS.ErrnoException) => finish({ spawnError: `${error.code ?? 'error'}: ${error.message}` }));
    if (pgid === undefined) return; // 'error' follows
    options.onSpawn?.(pgid);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    timers.push(
      setTimeout(() => {
        timedOut = true;
        stop();
      }, options.timeoutMs),
    );

    let exit: { exitCode: number | null; signal: NodeJS.Signals | null } | undefined;
    let closed = false;
    child.once('exit', (exitCode, signal) => {
      exit = { exitCode, signal };
      // Leftovers in the group would keep the pipes open: give them a moment, then end them.
      timers.push(setTimeout(() => !closed && signalGroup('SIGKILL'), PIPE_GRACE_MS));
    });
    child.once('close', () => {
      closed = true;
      signalGroup('SIGKILL'); // a background child that let go of the pipes goes too
      finish(exit ?? { exitCode: child.exitCode, signal: child.signalCode });
    });
  });
}
