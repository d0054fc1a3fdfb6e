import { readdirSync, readFileSync } from 'node:fs';

/**
 * Identifies a process group across an agent restart, so that a recorded group is killed
 * only if it is still the same one: the boot must be the same (ids are reused after a
 * reboot) and its processes must have started no earlier than the group's leader did (ids
 * are reused within a boot too, after a wrap-around).
 */
export interface GroupIdentity {
  pgid: number;
  bootId: string;
  /** the leader's start time, in clock ticks since boot (/proc/<pid>/stat field 22) */
  startTicks: number;
}

let thisBoot: string | undefined;

/** This boot's id, read once: no process outlives a reboot. */
export function bootId(): string {
  if (thisBoot !== undefined) return thisBoot;
  try {
    thisBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    thisBoot = '';
  }
  return thisBoot;
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, …, starttime at 19]. */
export function statOf(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The group as it is now. A leader that already exited leaves the agent's own start as the
 * lower bound: every process of the group started after it. */
export function identify(pgid: number): GroupIdentity {
  const fields = statOf(pgid) ?? statOf('self');
  return { pgid, bootId: bootId(), startTicks: Number(fields?.[19] ?? 0) };
}

/** Kills (SIGKILL) what is left of a recorded group; returns how many processes it hit. */
export function killRecordedGroup(group: GroupIdentity, currentBootId = bootId()): number {
  if (!group.bootId || group.bootId !== currentBootId) return 0;
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statOf(Number(entry));
    if (!fields || Number(fields[2]) !== group.pgid || fields[0] === 'Z' || Number(fields[19]) < group.startTicks) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      killed++;
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
