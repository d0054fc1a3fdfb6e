import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Sits between a client's socket and aedes and reads each MQTT fixed header as the bytes pass:
 * a packet longer than the limit closes the connection before its body is read, so a 100 MB
 * packet costs one socket buffer, not 100 MB (aedes' parser would buffer the whole packet;
 * MQTT 3.1.1 has no reason code to send for it).
 */
export class PacketSizeGuard extends Duplex {
  /** bytes of the current packet's body still to pass; -1 while reading a fixed header */
  private bodyLeft = -1;
  private header: number[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly maxPacketBytes: number,
    private readonly onOversize: (length: number) => void,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => this.fromSocket(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy());
    socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // one write at a time reaches here: go on at once unless the socket's buffer is full
    if (this.socket.write(chunk)) callback();
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  private fromSocket(chunk: Buffer): void {
    const oversize = this.scan(chunk);
    if (oversize !== undefined) {
      // the whole packets before it still count; then the connection ends
      if (oversize.at > 0) this.push(chunk.subarray(0, oversize.at));
      this.onOversize(oversize.length);
      this.socket.destroy();
      return;
    }
    if (!this.push(chunk)) this.socket.pause();
  }

  /** Walks the packet boundaries in `chunk`; finds a packet over the limit (its length, and
   * where in this chunk its header starts). */
  private scan(chunk: Buffer): { length: number; at: number } | undefined {
    let i = 0;
    let headerAt = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const step = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= step;
        i += step;
        continue;
      }
      if (this.header.length === 0) headerAt = i;
      this.header.push(chunk[i++]!);
      const length = remainingLength(this.header);
      if (length === undefined) continue;
      if (length === -1 || length + this.header.length > this.maxPacketBytes) return { length, at: headerAt };
      this.header = [];
      this.bodyLeft = length;
    }
    return undefined;
  }
}

/** The remaining length of a fixed header read so far (type byte, then 1-4 length bytes):
 * undefined while incomplete, -1 when malformed (a fifth length byte). */
function remainingLength(header: number[]): number | undefined {
  if (header.length < 2) return undefined;
  let value = 0;
  for (let i = 1; i < header.length; i++) {
    value += (header[i]! & 0x7f) * 128 ** (i - 1);
    if ((header[i]! & 0x80) === 0) return value;
    if (i === 4) return -1;
  }
  return undefined;
}
