import { spawner } from './spawner.js';

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

/**
 * Runs one program in a process group of its own, without a shell, with the given
 * environment only, through the spawn helper (spawner.ts). stdout and stderr are drained at
 * the same time into bounded tails, so no output volume or order can block the child or
 * exhaust memory. On timeout or abort the whole group gets SIGTERM, then SIGKILL after
 * `graceMs`; after the program exits, whatever it left running in its group is killed too,
 * so a step never outlives itself.
 */
export function runProcess(options: RunOptions): Promise<ProcessResult> {
  const started = performance.now();
  let timedOut = false;
  let aborted = false;
  let pgid: number | undefined;

  return new Promise<ProcessResult>((resolve) => {
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
        stdout: '',
        stderr: '',
        stdoutBytes: 0,
        stderrBytes: 0,
        stderrLines: 0,
        durationMs: Math.round(performance.now() - started),
        ...extra,
      });
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };

    spawner.run(
      { path: options.path, args: options.args, env: options.env, cwd: options.cwd, uid: options.uid, gid: options.gid, capBytes: options.outputCapBytes ?? 64 * 1024 },
      {
        onPid: (pid) => {
          pgid = pid;
          options.onSpawn?.(pid);
          if (options.signal?.aborted) onAbort();
          else options.signal?.addEventListener('abort', onAbort, { once: true });
          timers.push(
            setTimeout(() => {
              timedOut = true;
              stop();
            }, options.timeoutMs),
          );
        },
        onDone: (done) => finish(done),
        onError: (message) => finish({ spawnError: message }),
      },
    );
  });
}
