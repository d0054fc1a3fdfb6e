import type { ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { statOf as stat } from '../../src/jobs/process-group.js';

/** SIGTERM to a child this test started, resolved once it has exited (at once if it already has). */
export async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Whether the process still runs (a zombie, dead but not yet reaped, does not count:
 * this container's PID 1 does not reap). */
export function running(pid: number): boolean {
  const fields = stat(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

/** Processes of the group that still run. */
export function groupMembers(pgid: number): string[] {
  return readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && Number(stat(pid)?.[2]) === pgid && running(Number(pid)));
}
