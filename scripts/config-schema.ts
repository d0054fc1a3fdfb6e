/** Writes deploy/config.schema.json from the config schema, so editors and docs never drift. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigSchema } from '../src/config/schema.js';

export const schemaFile = fileURLToPath(new URL('../deploy/config.schema.json', import.meta.url));

export function configJsonSchema(): string {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ title: 'edgevisor config', ...schema }, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) writeFileSync(schemaFile, configJsonSchema());
