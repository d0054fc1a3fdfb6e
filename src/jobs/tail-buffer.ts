/**
 * The last `capBytes` of a stream, and how many lines it had in all. Memory stays bounded
 * however much a child prints, and the stream is always read to its end (a child is never
 * killed by a full pipe, nor by its reader giving up).
 */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private held = 0;
  totalBytes = 0;
  private newlines = 0;
  private endsWithNewline = true;

  constructor(private readonly capBytes: number) {}

  push(chunk: Buffer): void {
    this.totalBytes += chunk.length;
    for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) this.newlines++;
    if (chunk.length > 0) this.endsWithNewline = chunk[chunk.length - 1] === 10;
    this.chunks.push(chunk);
    this.held += chunk.length;
    if (this.held > this.capBytes * 2) this.compact();
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks, this.held);
    const kept = all.subarray(all.length - this.capBytes);
    this.chunks = [Buffer.from(kept)];
    this.held = kept.length;
  }

  /** Lines written: a last line without its newline counts too. */
  get lines(): number {
    return this.newlines + (this.totalBytes > 0 && !this.endsWithNewline ? 1 : 0);
  }

  /** The kept tail as text, starting on a whole UTF-8 character. */
  text(): string {
    let tail = Buffer.concat(this.chunks, this.held);
    if (tail.length > this.capBytes) tail = tail.subarray(tail.length - this.capBytes);
    let start = 0;
    if (this.totalBytes > tail.length) while (start < tail.length && start < 4 && (tail[start] & 0xc0) === 0x80) start++;
    return tail.subarray(start).toString('utf8');
  }
}
