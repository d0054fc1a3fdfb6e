import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import type { z } from 'zod';
import { fromEnv, setPath } from './env.js';
import { ConfigSchema, type Config } from './schema.js';

export type LoadResult = { ok: true; config: Config } | { ok: false; error: string };

/**
 * Defaults, then the file (JSON, or YAML by extension), then EDGEVISOR_* variables.
 * A failure comes back as one line naming the key and the problem.
 */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): LoadResult {
  const fail = (error: string): LoadResult => ({ ok: false, error: `config: ${error}` });
  let raw: unknown = {};
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      return fail(`cannot read ${options.file}: ${(err as Error).message}`);
    }
    try {
      raw = /^\.ya?ml$/i.test(extname(options.file)) ? parseYaml(text) : JSON.parse(text);
    } catch (err) {
      return fail(`${options.file}: not valid ${/ya?ml$/i.test(options.file) ? 'YAML' : 'JSON'}: ${oneLine((err as Error).message)}`);
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail(`${options.file}: must hold an object`);
  }
  const env = fromEnv(options.env ?? {});
  if ('error' in env) return fail(env.error);
  const merged = mergeDeep(raw as Record<string, unknown>, env.value);

  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) return fail(describeIssue(parsed.error.issues[0]));
  const fileError = checkFiles(parsed.data);
  return fileError ? fail(fileError) : { ok: true, config: parsed.data };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') return `${[...path, issue.keys[0]].join('.')}: unknown key`;
  return `${path.join('.') || '(root)'}: ${issue.message}`;
}

/** Files the config names must be readable now, not at the first connection attempt. */
function checkFiles(config: Config): string | undefined {
  const { tls, embeddedTls, embeddedPasswordFile } = config.mqtt;
  const files: Array<[string, string | undefined]> = [
    ...(['ca', 'cert', 'key'] as const).map((key): [string, string | undefined] => [`mqtt.tls.${key}`, tls[key]]),
  ];
  if (config.mqtt.url === 'embedded') {
    files.push(['mqtt.embeddedPasswordFile', embeddedPasswordFile]);
    for (const key of ['cert', 'key', 'ca'] as const) files.push([`mqtt.embeddedTls.${key}`, embeddedTls?.[key]]);
  }
  for (const [name, file] of files) {
    if (!file) continue;
    try {
      readFileSync(file);
    } catch (err) {
      return `${name}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  }
  return undefined;
}

function mergeDeep(base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(base);
  const walk = (value: unknown, path: string[]) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
    } else setPath(out, path, value);
  };
  walk(override, []);
  return out;
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** YAML support is loaded only for YAML files: most configs are JSON and start-up time counts. */
const parseYaml = (text: string): unknown => (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
