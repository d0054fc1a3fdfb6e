import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RunAs {
  uid: number;
  gid: number;
  home: string;
}

/**
 * The identity a step runs as. Without `runAsUser` that is the agent's own. Another user is
 * only possible when the agent runs as root (it then sets uid and gid itself, no sudo); a
 * step that names a user it cannot become is refused, never run as someone else.
 */
export async function identityFor(user: string | undefined): Promise<{ ok: true; runAs?: RunAs } | { ok: false; reason: string }> {
  if (!user) return { ok: true };
  let uid: number;
  let gid: number;
  let home = '/';
  try {
    uid = Number((await run('id', ['-u', '--', user])).stdout.trim());
    gid = Number((await run('id', ['-g', '--', user])).stdout.trim());
    const entry = (await run('getent', ['passwd', user]).catch(() => ({ stdout: '' }))).stdout.trim().split(':');
    // a home that does not exist (nobody's /nonexistent) would make the spawn fail
    if (entry[5] && existsSync(entry[5])) home = entry[5];
  } catch {
    return { ok: false, reason: `refused: runAsUser "${user}" is not a user on this machine` };
  }
  const self = process.getuid?.();
  if (self !== 0 && self !== uid) return { ok: false, reason: `refused: runAsUser "${user}" needs the agent to run as root (it runs as uid ${self})` };
  return { ok: true, runAs: { uid, gid, home } };
}
