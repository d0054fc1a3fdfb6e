import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AgentMessage, HelperDone, HelperMessage, HelperRequest } from './spawn-helper.js';

export interface SpawnHandlers {
  /** the program runs, in the process group `pid`; when this returns, the group must be in
   * the durable job record (the helper kills unrecorded groups if the agent dies) */
  onPid: (pid: number) => void;
  onDone: (done: HelperDone) => void;
  /** it never ran, or its result is lost (the helper died) */
  onError: (message: string) => void;
}

/** The helper as built (next to the bundle), or its source when running from sources (tests, tsx). */
export function helperEntry(): { path: string; execArgv: string[] } {
  const built = fileURLToPath(new URL('./spawn-helper.js', import.meta.url));
  if (existsSync(built)) return { path: built, execArgv: [] };
  return { path: fileURLToPath(new URL('./spawn-helper.ts', import.meta.url)), execArgv: ['--import', 'tsx'] };
}

/**
 * Starts job programs through the spawn helper (spawn-helper.ts), a small child process
 * forked once. Why not spawn here: fork() from the agent copies the page tables of its much
 * larger heap and blocks its event loop for the whole fork and exec (measured ~2.8 ms per
 * spawn in the agent against ~1 ms in a small process), and afterwards every page the agent
 * writes takes a copy-on-write fault. A helper that dies is started again on the next
 * request; the runs it had are reported lost and their groups killed.
 */
export class Spawner {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly runs = new Map<number, SpawnHandlers & { pid?: number }>();

  /** Starts the helper now rather than on the first request (a job should not wait for it). */
  start(): void {
    if (this.child) return;
    const { path, execArgv } = helperEntry();
    // Small young generation: the helper holds little but output tails.
    const child = fork(path, [], { execArgv: [...execArgv, '--max-semi-space-size=1'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
    this.child = child;
    child.on('message', (message: HelperMessage) => this.onMessage(message));
    child.once('exit', (code, signal) => this.onExit(child, `the spawn helper exited (${signal ?? `code ${code}`})`));
    child.once('error', (error) => this.onExit(child, `the spawn helper failed: ${error.message}`));
    this.idle(); // the helper alone never keeps the agent running
  }

  run(request: Omit<HelperRequest, 'id'>, handlers: SpawnHandlers): void {
    this.start();
    const id = this.nextId++;
    this.runs.set(id, handlers);
    this.child!.ref();
    (this.child!.channel as { ref?: () => void } | undefined)?.ref?.();
    this.child!.send({ ...request, id } satisfies AgentMessage, (error) => {
      if (error) this.settle(id)?.onError(`cannot reach the spawn helper: ${error.message}`);
    });
  }

  /** The helper's process id, while it runs. */
  get helperPid(): number | undefined {
    return this.child?.pid;
  }

  /** Ends the helper (what it started runs on, as after a crash of the agent). */
  stop(): void {
    this.child?.disconnect();
  }

  private idle(): void {
    if (this.runs.size > 0) return;
    this.child?.unref();
    (this.child?.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  private settle(id: number) {
    const run = this.runs.get(id);
    this.runs.delete(id);
    this.idle();
    return run;
  }

  private onMessage(message: HelperMessage): void {
    const run = this.runs.get(message.id);
    if (!run) return;
    if ('pid' in message) {
      run.pid = message.pid;
      run.onPid(message.pid);
      this.child?.send({ recorded: message.id } satisfies AgentMessage);
    } else if ('spawnError' in message) this.settle(message.id)?.onError(message.spawnError);
    else this.settle(message.id)?.onDone(message.done);
  }

  private onExit(child: ChildProcess, reason: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    for (const [id, run] of this.runs) {
      this.runs.delete(id);
      // nobody drains its output any more: end the group rather than leave it blocked
      if (run.pid !== undefined) {
        try {
          process.kill(-run.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      run.onError(reason);
    }
  }
}

/** The one helper of this process. */
export const spawner = new Spawner();
