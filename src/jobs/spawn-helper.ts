/**
 * The spawn helper: a small, long-lived child process that starts job programs for the
 * agent (see spawner.ts for why). It runs each one in a process group of its own, without a
 * shell, drains stdout and stderr into bounded tails, and reports on its IPC channel:
 * `{id, pid}` as soon as the program runs (or `{id, spawnError}`), then `{id, done}` once it
 * has exited and its pipes have closed. The agent answers `{recorded: id}` once the group is
 * in its durable job record. Timeouts and cancels stay with the agent, which signals the
 * group itself. When the agent goes away, the helper goes too: a group the agent had
 * recorded keeps running, for the restarted agent's recovery to find and kill; one it had
 * not (it died in between) is killed here, since nothing else knows of it.
 */
import { spawn } from 'node:child_process';
import { TailBuffer } from './tail-buffer.js';

export interface HelperRequest {
  id: number;
  path: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  capBytes: number;
}

export interface HelperDone {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: number;
  stderrBytes: number;
  stderrLines: number;
}

/** From the agent: a run to start, or word that a group is in the job record. */
export type AgentMessage = HelperRequest | { recorded: number };

export type HelperMessage = { id: number; pid: number } | { id: number; spawnError: string } | { id: number; done: HelperDone };

/** How long the output pipes may stay open after the program exited (a background child
 * still holding them) before the rest of its process group is killed. */
const PIPE_GRACE_MS = 1000;

// With a callback, a send to an agent already gone fails quietly instead of throwing here.
const send = (message: HelperMessage) => process.connected && process.send?.(message, undefined, undefined, () => {});

/** Groups started whose record the agent has not confirmed yet, by run id. */
const unrecorded = new Map<number, number>();

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left in the group
  }
}

function run(request: HelperRequest): void {
  const { id } = request;
  let child;
  try {
    child = spawn(request.path, request.args, {
      detached: true, // its own process group, so the group can be signalled as one
      stdio: ['ignore', 'pipe', 'pipe'],
      env: request.env,
      cwd: request.cwd,
      uid: request.uid,
      gid: request.gid,
      shell: false,
    });
  } catch (error) {
    return void send({ id, spawnError: `${(error as NodeJS.ErrnoException).code ?? 'error'}: ${(error as Error).message}` });
  }
  const pgid = child.pid;
  const stdout = new TailBuffer(request.capBytes);
  const stderr = new TailBuffer(request.capBytes);
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.once('error', (error: NodeJS.ErrnoException) => pgid === undefined && send({ id, spawnError: `${error.code ?? 'error'}: ${error.message}` }));
  if (pgid === undefined) return; // 'error' follows
  unrecorded.set(id, pgid);
  send({ id, pid: pgid });

  let exit: { exitCode: number | null; signal: NodeJS.Signals | null } | undefined;
  let grace: NodeJS.Timeout | undefined;
  child.once('exit', (exitCode, signal) => {
    exit = { exitCode, signal };
    // Leftovers in the group would keep the pipes open: give them a moment, then end them.
    grace = setTimeout(() => killGroup(pgid), PIPE_GRACE_MS);
  });
  child.once('close', () => {
    clearTimeout(grace);
    unrecorded.delete(id);
    killGroup(pgid); // a background child that let go of the pipes goes too
    const { exitCode, signal } = exit ?? { exitCode: child.exitCode, signal: child.signalCode };
    send({
      id,
      done: { exitCode, signal, stdout: stdout.text(), stderr: stderr.text(), stdoutBytes: stdout.totalBytes, stderrBytes: stderr.totalBytes, stderrLines: stderr.lines },
    });
  });
}

process.on('message', (message: AgentMessage) => ('recorded' in message ? unrecorded.delete(message.recorded) : run(message)));
process.on('disconnect', () => {
  for (const pgid of unrecorded.values()) killGroup(pgid);
  process.exit(0);
});
