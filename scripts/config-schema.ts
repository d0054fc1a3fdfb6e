/**
 * Writes deploy/config.schema.json and docs/config.md from the config schema, so editors and
 * docs never drift: `npm run config-schema`; a test fails when either is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { envKeys } from '../src/config/env.js';
import { ConfigSchema } from '../src/config/schema.js';

export const schemaFile = fileURLToPath(new URL('../deploy/config.schema.json', import.meta.url));
export const referenceFile = fileURLToPath(new URL('../docs/config.md', import.meta.url));

const jsonSchema = () => z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' });

export function configJsonSchema(): string {
  return `${JSON.stringify({ title: 'edgevisor config', ...jsonSchema() }, null, 2)}\n`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** One table row per leaf key: the key, its type, default, environment variable and description. */
export function configReference(): string {
  const rows = envKeys().map((key) => {
    const fallback = key.default === undefined ? '' : `\`${JSON.stringify(key.default)}\``;
    return `| \`${key.path.join('.')}\` | ${key.type} | ${cell(fallback)} | \`${key.name}\` | ${cell(key.description ?? '')} |`;
  });
  return `# Configuration reference

Generated from the config schema (src/config/schema.ts) by \`npm run config-schema\`; do not edit.
The config file is JSON (or YAML by .yaml/.yml); \`deploy/config.schema.json\` is the same schema for
editors. Every key can also be set by the environment variable beside it (arrays and objects as
JSON). \`edgevisor --print-config\` prints the effective config with secrets masked.

| key | type | default | environment | description |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(schemaFile, configJsonSchema());
  writeFileSync(referenceFile, configReference());
}
