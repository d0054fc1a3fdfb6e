import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

export const AGENT_USERNAME = 'edgevisor-agent';
export const CREDENTIALS_FILE = 'embedded-broker-credentials.json';

/**
 * The agent's own user on the embedded broker: generated once into the state directory
 * (mode 0600, only the agent's user reads it) and reused on every start, so a client that
 * has read it once before a restart is not locked out by surprise, and nobody else can guess it.
 */
export function agentCredentials(stateDir: string): Credentials {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, CREDENTIALS_FILE);
  const fresh: Credentials = { username: AGENT_USERNAME, password: randomBytes(32).toString('base64url') };
  try {
    // 'wx': created only if absent, so two starts never overwrite each other's secret
    writeFileSync(path, `${JSON.stringify(fresh)}\n`, { flag: 'wx', mode: 0o600 });
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600); // a copy or restore may have widened it
  const stored = parseStored(readFileSync(path, 'utf8'));
  if (!stored || typeof stored.username !== 'string' || typeof stored.password !== 'string' || stored.password.length < 32) {
    throw new Error(`${path}: not the agent's broker credentials (delete it to have new ones made)`);
  }
  return { username: stored.username, password: stored.password };
}

function parseStored(text: string): Partial<Credentials> | undefined {
  try {
    return JSON.parse(text) as Partial<Credentials>;
  } catch {
    return undefined;
  }
}
