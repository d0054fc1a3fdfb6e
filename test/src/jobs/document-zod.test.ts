import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJobDocument } from '../../../src/jobs/document.js';
import { parseJobDocument as handWritten } from '../../support/document-oracle.js';
import { documentFuzzer } from '../../support/fuzz-documents.js';

const defaults = { timeoutSeconds: 600 };

describe('the zod job document schema gives the same answers as the hand-written parser before it', () => {
  // the corpus of the document and agent fuzz tests: seed 12345 × 5,000, seed 777 × 300
  it.each([
    [12345, 5000],
    [777, 300],
  ])('over the fuzz corpus (seed %i, %i documents, as built and after a JSON round trip)', (seed, count) => {
    const next = documentFuzzer(seed);
    let same = 0;
    let accepted = 0;
    for (let i = 0; i < count; i++) {
      const doc = next();
      for (const form of [doc, JSON.parse(JSON.stringify(doc ?? null))]) {
        const ours = parseJobDocument(form, defaults);
        expect(ours, JSON.stringify(form)).toEqual(handWritten(form, defaults));
        same++;
        if (ours.ok) accepted++;
      }
    }
    expect(same).toBe(2 * count);
    expect(accepted).toBeGreaterThan(0); // the corpus reaches both answers
    expect(accepted).toBeLessThan(2 * count);
  });
});

describe('docs/job-document.schema.json', () => {
  it('is generated from the zod schema (run `npm run job-document-schema` after a change)', async () => {
    const { jobDocumentSchemaText, jobSchemaFile } = await import('../../../scripts/job-document-schema.js');
    expect(readFileSync(jobSchemaFile, 'utf8')).toBe(jobDocumentSchemaText());
    const schema = JSON.parse(jobDocumentSchemaText());
    expect(schema.anyOf[0].required).toEqual(expect.arrayContaining(['version', 'steps']));
    expect(schema.anyOf[0].properties.steps).toMatchObject({ minItems: 1, maxItems: 32 });
  });
});
