/** Writes docs/job-document.schema.json from the job document's zod schema, for job authors (editors validate against it). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { jobDocumentJsonSchema } from '../src/jobs/document.js';

export const jobSchemaFile = fileURLToPath(new URL('../docs/job-document.schema.json', import.meta.url));

export const jobDocumentSchemaText = () => `${JSON.stringify(jobDocumentJsonSchema(), null, 2)}\n`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) writeFileSync(jobSchemaFile, jobDocumentSchemaText());
