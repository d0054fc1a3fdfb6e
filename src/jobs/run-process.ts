import { launchWithNode, type Exit, type Launched, type Launcher } from './launch.js';
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
  /** how the program is started (default: posix_spawn where built, else child_process) */
  launcher?: Launcher;
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
export async function runProcess(options: RunOptions): Promise<ProcessResult> {
  const started = performance.now();
  const cap = options.outputCapBytes ?? 64 * 1024;
  const stdout = new TailBuffer(cap);
  const stderr = new TailBuffer(cap);
  const ending = { timedOut: false, aborted: false };
  const result = (ended: Partial<ProcessResult>): ProcessResult => ({
    exitCode: null,
    signal: null,
    ...ending,
    stdout: stdout.text(),
    stderr: stderr.text(),
    stdoutBytes: stdout.totalBytes,
    stderrBytes: stderr.totalBytes,
    stderrLines: stderr.lines,
    durationMs: Math.round(performance.now() - started),
    ...ended,
  });

  let child: Launched;
  try {
    const { path, args, env, cwd, uid, gid } = options;
    child = await (options.launcher ?? launchWithNode)({ path, args, env, cwd, uid, gid });
  } catch (error) {
    return result({ spawnError: `${(error as NodeJS.ErrnoException).code ?? 'error'}: ${(error as Error).message}` });
  }
  options.onSpawn?.(child.pid);
  return result(await supervise(child, options, { stdout, stderr }, ending));
}

/**
 * Drains the started program's pipes into the tails and ends its group on timeout or abort
 * (noted in `ending`); resolves with its exit once it has exited and both pipes are closed.
 */
function supervise(
  child: Launched,
  options: RunOptions,
  tails: { stdout: TailBuffer; stderr: TailBuffer },
  ending: { timedOut: boolean; aborted: boolean },
): Promise<Exit> {
  const pgid = child.pid;
  return new Promise<Exit>((resolve) => {
    const timers: NodeJS.Timeout[] = [];
    const signalGroup = (signal: NodeJS.Signals) => {
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
    const onAbort = () => {
      ending.aborted = true;
      stop();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    timers.push(
      setTimeout(() => {
        ending.timedOut = true;
        stop();
      }, options.timeoutMs),
    );

    // Done once the program has exited and both pipes are closed, in whichever order.
    let exit: Exit | undefined;
    let openPipes = 2;
    const finishIfDone = () => {
      if (!exit || openPipes > 0) return;
      signalGroup('SIGKILL'); // a background child that let go of the pipes goes too
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener('abort', onAbort);
      resolve(exit);
    };
    for (const [stream, tail] of [
      [child.stdout, tails.stdout],
      [child.stderr, tails.stderr],
    ] as const) {
      stream.on('data', (chunk: Buffer) => tail.push(chunk));
      stream.on('error', () => {}); // a failed read ends the pipe like EOF: 'close' follows
      stream.once('close', () => {
        openPipes--;
        finishIfDone();
      });
    }
    void child.exited.then((ended) => {
      exit = ended;
      // Leftovers in the group would keep the pipes open: give them a moment, then end them.
      if (openPipes > 0) timers.push(setTimeout(() => signalGroup('SIGKILL'), PIPE_GRACE_MS));
      finishIfDone();
    });
  });
}
