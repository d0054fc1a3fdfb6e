import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit } from './mosquitto.js';
import { waitFor } from './ports.js';

const entry = join(import.meta.dirname, '../../dist/bundle/main.js');

export interface AgentProcess {
  child: ChildProcess;
  /** parsed JSON log lines from stdout */
  logs: Array<Record<string, unknown>>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stateDir: string;
  configFile?: string;
}

/**
 * MQTT client ids of the agents this test file has running. Two live agents with one id on one
 * broker take the session from each other in turn, so /health flaps: refuse that at once.
 */
const liveClientIds = new Set<string>();

function claimClientId(config: Record<string, unknown> | undefined): (() => void) | undefined {
  const mqtt = config?.mqtt as { url?: string; clientId?: string } | undefined;
  const id = mqtt?.clientId ?? (config?.thingName as string | undefined);
  if (!mqtt?.url || mqtt.url === 'embedded' || !id) return undefined;
  const key = `${mqtt.url} ${id}`;
  if (liveClientIds.has(key))
    throw new Error(`runAgent: another agent of this test is still running as MQTT client "${id}" on ${mqtt.url}; give each live agent its own thingName`);
  liveClientIds.add(key);
  return () => liveClientIds.delete(key);
}

let things = 0;
/** A thing name no other agent of this run uses. */
export const uniqueThingName = (prefix: string) => `${prefix}-${process.pid}-${++things}`;

/** The built agent as a child process, the way systemd runs it. */
export function runAgent(
  options: { config?: Record<string, unknown>; args?: string[]; env?: Record<string, string>; stateDir?: string; entry?: string } = {},
): AgentProcess {
  const dir = mkdtempSync(join(tmpdir(), 'edgevisor-agent-'));
  const stateDir = options.stateDir ?? join(dir, 'state');
  const args = ['run', ...(options.args ?? [])];
  let configFile: string | undefined;
  if (options.config) {
    configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ stateDir, ...options.config }));
    args.push('--config', configFile);
  }
  const child = spawn(process.execPath, [options.entry ?? entry, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const release = claimClientId(options.config);
  const logs: AgentProcess['logs'] = [];
  let stdout = '';
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line));
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      release?.();
      resolve({ code, signal });
    }),
  );
  return { child, logs, stdout: () => stdout, stderr: () => stderr, exited, stateDir, configFile };
}

export async function health(base: string): Promise<{ status: number; body: any } | undefined> {
  try {
    const res = await fetch(`${base}/health`);
    return { status: res.status, body: await res.json() };
  } catch {
    return undefined;
  }
}

export const waitForHealth = (base: string, status: number, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const h = await health(base);
      return h?.status === status ? h : undefined;
    },
    `/health ${status}`,
    timeoutMs,
  );

/** A one-shot command of the built CLI (e.g. publish), with optional standard input. */
export function runCli(args: string[], options: { input?: Buffer | string; env?: Record<string, string> } = {}) {
  const result = spawnSync(process.execPath, [entry, ...args], { input: options.input, env: { PATH: process.env.PATH, ...options.env }, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
