import { describe, expect, it } from 'vitest';
import { VerifiedBlobs } from '../../../src/firmware/blobs.js';

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('the verified blob store (bytes by digest)', () => {
  it('keeps bytes under their digest, one copy however many devices share the build', () => {
    const blobs = new VerifiedBlobs(1000);
    const a = bytes(100, 1);
    blobs.put('sha256:a', a);
    blobs.put('sha256:a', a);
    expect(blobs.get('sha256:a')).toBe(a);
    expect(blobs.bytes).toBe(100);
    expect(blobs.get('sha256:b')).toBeUndefined();
  });

  it('stays within its byte bound, least recently used first, and never pushes out the newest', () => {
    const blobs = new VerifiedBlobs(250);
    blobs.put('sha256:a', bytes(100, 1));
    blobs.put('sha256:b', bytes(100, 2));
    blobs.get('sha256:a'); // used: b is now the least recently used
    blobs.put('sha256:c', bytes(100, 3));
    expect(blobs.get('sha256:b')).toBeUndefined();
    expect(blobs.get('sha256:a')).toBeDefined();
    expect(blobs.get('sha256:c')).toBeDefined();
    expect(blobs.bytes).toBe(200);
    blobs.put('sha256:d', bytes(250, 4));
    expect(blobs.get('sha256:d')).toBeDefined();
    expect(blobs.bytes).toBe(250);
  });
});
