import { z } from 'zod';
import { ConfigSchema } from './schema.js';

/** Environment overrides, derived from the schema: `thingName` is EDGEVISOR_THING_NAME,
 * `mqtt.url` is EDGEVISOR_MQTT__URL (double underscore between levels). */
export interface EnvKey {
  name: string;
  path: string[];
  type: string;
  description?: string;
  default?: unknown;
}

interface JsonSchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  anyOf?: JsonSchemaNode[];
}

export const ENV_PREFIX = 'EDGEVISOR_';

const screaming = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

export function envKeys(): EnvKey[] {
  const root = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const keys: EnvKey[] = [];
  const walk = (node: JsonSchemaNode, path: string[]) => {
    if (node.type === 'object' && node.properties) {
      for (const [key, child] of Object.entries(node.properties)) if (!key.startsWith('$')) walk(child, [...path, key]);
      return;
    }
    const type = node.type ?? node.anyOf?.find((n) => n.type)?.type ?? 'string';
    keys.push({ name: ENV_PREFIX + path.map(screaming).join('__'), path, type, description: node.description, default: node.default });
  };
  walk(root, []);
  return keys;
}

/** Turns the EDGEVISOR_* variables into a partial config object, or names the bad one. */
export function fromEnv(env: NodeJS.ProcessEnv): { value: Record<string, unknown> } | { error: string } {
  const value: Record<string, unknown> = {};
  // deriving the keys costs ~30 ms of start-up: only when some EDGEVISOR_ variable is set
  if (!Object.keys(env).some((name) => name.startsWith(ENV_PREFIX))) return { value };
  for (const key of envKeys()) {
    const raw = env[key.name];
    if (raw === undefined) continue;
    const parsed = parseValue(raw, key.type);
    if (parsed.error) return { error: `${key.name}: ${parsed.error}` };
    setPath(value, key.path, parsed.value);
  }
  return { value };
}

function parseValue(raw: string, type: string): { value?: unknown; error?: string } {
  switch (type) {
    case 'integer':
    case 'number': {
      const n = Number(raw);
      return raw.trim() === '' || Number.isNaN(n) ? { error: `"${raw}" is not a number` } : { value: n };
    }
    case 'boolean':
      if (['true', '1', 'yes'].includes(raw)) return { value: true };
      if (['false', '0', 'no'].includes(raw)) return { value: false };
      return { error: `"${raw}" is not a boolean (true/false)` };
    case 'array':
    case 'object':
      try {
        return { value: JSON.parse(raw) };
      } catch {
        return { error: `must be JSON (${type})` };
      }
    default:
      return { value: raw };
  }
}

export function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    node = (node[key] = next && typeof next === 'object' && !Array.isArray(next) ? next : {}) as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}
