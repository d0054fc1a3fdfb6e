import { describe, expect, it } from 'vitest';
import { checkHarborPayload } from '../../../src/firmware/harbor.js';
import { harborPush } from '../../support/firmware.js';
import { mutationFuzzer } from '../../support/fuzz-documents.js';
import { checkHarborPayload as handWritten } from '../../support/harbor-oracle.js';

describe('Harbor webhook payloads through the zod schema', () => {
  it('give the same answers as the hand-written check before it, over 5,000 mutated payloads (and their JSON round trips)', () => {
    const next = mutationFuzzer(4242, (pick) => ({
      ...harborPush('fw', 'esp32', '1.0.0'),
      type: pick(['PUSH_ARTIFACT', 'PUSH_ARTIFACT', 'PUSH_ARTIFACT', 'DELETE_ARTIFACT']),
    }));
    const kinds = { push: 0, ignored: 0, invalid: 0 };
    for (let i = 0; i < 5000; i++) {
      const payload = next();
      for (const form of [payload, JSON.parse(JSON.stringify(payload ?? null))]) {
        const ours = checkHarborPayload(form);
        expect(ours, JSON.stringify(form)).toEqual(handWritten(form));
        kinds[ours.kind]++;
      }
    }
    // the corpus reaches every answer
    expect(Object.values(kinds).every((n) => n > 0)).toBe(true);
  });

  it('answers a valid push with its repository and tags, and names the first missing field', () => {
    expect(checkHarborPayload(harborPush('fw', 'esp32', '1.2.0'))).toEqual({
      kind: 'push',
      repoFullName: 'fw/esp32',
      name: 'esp32',
      namespace: 'fw',
      tags: ['1.2.0'],
    });
    const { event_data: data, ...rest } = harborPush('fw', 'esp32', '1.2.0');
    expect(checkHarborPayload(rest)).toEqual({ kind: 'invalid', message: 'missing field `event_data`' });
    expect(checkHarborPayload({ ...rest, event_data: { ...data, resources: [data.resources[0], { tag: 'x' }] } })).toEqual({
      kind: 'invalid',
      message: 'event_data.resources[1]: digest, tag and resource_url are required strings',
    });
    expect(checkHarborPayload([])).toEqual({ kind: 'invalid', message: 'the body is not a JSON object' });
  });
});
