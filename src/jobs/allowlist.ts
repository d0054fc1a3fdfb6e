import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import type { StepPlan } from './document.js';

export type Resolved = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Where a step's program really is, and whether jobs may run it. The command must be an
 * absolute path of printable ASCII with no "..", no percent-encoded separators; after
 * realpath (symlinks resolved) it must be an executable regular file that equals an exact
 * allowlist entry or lies inside a directory entry (one ending in "/"), matched on a "/"
 * boundary. Entries are resolved with realpath too, so /bin/echo and /usr/bin/echo agree
 * on merged-/usr systems. A handler (runHandler) is looked up in its directory: the job
 * handler directory is allowed as such; any other directory must be allowlisted. The file
 * system is asked synchronously: a few metadata calls of microseconds each, where each
 * thread-pool round trip costs a job tenths of a millisecond on a busy box.
 */
export async function resolveStep(step: StepPlan, allowlist: string[], handlerDir: string | undefined): Promise<Resolved> {
  let candidate = step.command;
  let extraDirs: string[] = [];
  if (step.type === 'runHandler') {
    const dir = step.handlerDir ?? handlerDir;
    if (!dir) return refuse('runHandler needs jobs.handlerDir or an input.path');
    candidate = join(dir, step.command);
    if (!step.handlerDir && handlerDir) extraDirs = [ensureSlash(handlerDir)];
  }
  const problem = pathProblem(candidate);
  if (problem) return refuse(problem);

  let real: string;
  try {
    real = realpathSync(candidate);
  } catch (error) {
    return refuse(`${candidate}: ${(error as NodeJS.ErrnoException).code ?? 'cannot be resolved'}`);
  }
  let isFile = false;
  try {
    isFile = statSync(real).isFile();
  } catch {
    // gone meanwhile, or not ours to see
  }
  if (!isFile) return refuse(`${candidate} is not a regular file`);
  try {
    accessSync(real, constants.X_OK);
  } catch {
    return refuse(`${candidate} is not executable`);
  }
  if (!allowed(real, [...allowlist, ...extraDirs])) {
    return refuse(`${candidate}${real !== candidate ? ` (really ${real})` : ''} is not in jobs.allowlist`);
  }
  return { ok: true, path: real };
}

/** What is wrong with a command path before it touches the file system, if anything. */
export function pathProblem(path: string): string | undefined {
  if (!/^[\x20-\x7e]+$/.test(path)) return 'the command path must be printable ASCII (no control characters, no look-alike Unicode)';
  if (!isAbsolute(path)) return `"${path}" is not an absolute path (bare names are not looked up in PATH)`;
  if (path.split('/').includes('..')) return `"${path}" contains ".."`;
  if (/%(2e|2f|5c)/i.test(path)) return `"${path}" contains a percent-encoded dot or separator`;
  return undefined;
}

function allowed(real: string, entries: string[]): boolean {
  for (const entry of entries) {
    if (!isAbsolute(entry)) continue;
    let resolved: string;
    try {
      resolved = realpathSync(entry);
    } catch {
      continue;
    }
    if (entry.endsWith('/')) {
      if (real.startsWith(ensureSlash(resolved))) return true;
    } else if (real === resolved) return true;
  }
  return false;
}

const ensureSlash = (dir: string) => (dir.endsWith(sep) ? dir : dir + sep);
const refuse = (reason: string): Resolved => ({ ok: false, reason: `refused: ${reason}` });
