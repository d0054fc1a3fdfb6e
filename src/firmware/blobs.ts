/**
 * Verified firmware bytes in memory, keyed by their sha256 digest: where the bytes of a build
 * live between the actor that verified them (or read them back from the disk cache) and the
 * requests that serve them. A digest names its bytes, so the key is a fact, not a hand-off
 * ticket: two devices on one build share one buffer. The service releases a build's bytes
 * when no entry serves or fetches it any more; as a backstop the store is bounded in bytes
 * like the manager's cache (firmware.maxCacheBytes), least recently used first, and the
 * newest build is never the one pushed out, since no single build may exceed the bound.
 */
export class VerifiedBlobs {
  /** insertion order is use order: the first key is the least recently used */
  private readonly blobs = new Map<string, Buffer>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  /** Only bytes already checked against `digest` go in. */
  put(digest: string, bytes: Buffer): void {
    this.remove(digest);
    this.blobs.set(digest, bytes);
    this.total += bytes.length;
    for (const [oldest, old] of this.blobs) {
      if (this.total <= this.maxBytes || oldest === digest) break;
      this.remove(oldest, old);
    }
  }

  get(digest: string): Buffer | undefined {
    const bytes = this.blobs.get(digest);
    if (bytes) {
      this.blobs.delete(digest);
      this.blobs.set(digest, bytes);
    }
    return bytes;
  }

  /** The build is no longer served nor fetched: its bytes go. */
  release(digest: string): void {
    this.remove(digest);
  }

  get bytes(): number {
    return this.total;
  }

  private remove(digest: string, bytes = this.blobs.get(digest)): void {
    if (!bytes) return;
    this.blobs.delete(digest);
    this.total -= bytes.length;
  }
}
