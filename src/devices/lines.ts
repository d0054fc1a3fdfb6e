/**
 * Splits a byte stream into lines (LF, with an optional CR before it). A line longer than
 * `maxBytes` is not kept whole: its bytes up to the next newline are skipped and it is
 * reported once as too long, so a device that never sends a newline cannot grow memory.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private overflowing = false;

  constructor(private readonly maxBytes: number) {}

  /** Calls `line` for each whole line and `tooLong` for each over-long one. */
  push(chunk: Buffer, line: (bytes: Buffer) => void, tooLong: (bytes: number) => void): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      this.take(chunk.subarray(start, nl));
      if (this.overflowing) tooLong(this.size);
      else {
        let whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
        if (whole.length > 0 && whole[whole.length - 1] === 0x0d) whole = whole.subarray(0, whole.length - 1);
        // a copy: the chunk's memory is the port's read buffer
        line(Buffer.from(whole));
      }
      this.parts = [];
      this.size = 0;
      this.overflowing = false;
      start = nl + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
  }

  private take(bytes: Buffer): void {
    this.size += bytes.length;
    if (this.overflowing) return;
    if (this.size > this.maxBytes + 1) {
      this.overflowing = true;
      this.parts = [];
    } else if (bytes.length > 0) this.parts.push(bytes);
  }
}
