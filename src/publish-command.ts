import { readFileSync } from 'node:fs';
import type { PublishOptions } from './cli.js';
import type { Config } from './config/schema.js';

/**
 * `edgevisor publish`: one message into the running agent's durable outbox, through its
 * local API (as the AWS IoT Device Client's sensor publish or Greengrass IPC publish would).
 * Resolves with the agent's answer; rejects with a one-line reason.
 */
export async function publishThroughAgent(config: Config, options: PublishOptions): Promise<string> {
  const payload = options.file !== undefined ? readFileSync(options.file === '-' ? 0 : options.file) : Buffer.from(options.message ?? '', 'utf8');
  const url = `http://${agentHost(config.http.host)}:${config.http.port}/api/v1/publish`;
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (config.http.token) headers.Authorization = `Bearer ${config.http.token}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ topic: options.topic, payload: payload.toString('base64'), encoding: 'base64', qos: options.qos, retain: options.retain }),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach the agent at ${url}: ${cause?.code ?? cause?.message ?? String(error)}`);
  }
  const text = await res.text();
  if (res.status !== 202) {
    const body = safeJson(text);
    throw new Error(`publish refused (${res.status}): ${body?.message ?? text}`);
  }
  return text;
}

/** A wildcard listen address is reached on loopback. */
function agentHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function safeJson(text: string): { message?: string } | undefined {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
