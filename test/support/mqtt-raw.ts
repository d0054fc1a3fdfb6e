import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';

/** MQTT 3.1.1 packets written by hand, for attacks mqtt.js would not send (or not fast). */

export function varint(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

const str = (s: string | Buffer) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

export function connectPacket(o: { clientId: string; username?: string; password?: string; keepalive?: number }): Buffer {
  const flags = 0x02 | (o.username !== undefined ? 0x80 : 0) | (o.password !== undefined ? 0x40 : 0);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, flags, 0, o.keepalive ?? 60]),
    str(o.clientId),
    o.username !== undefined ? str(o.username) : Buffer.alloc(0),
    o.password !== undefined ? str(o.password) : Buffer.alloc(0),
  ]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

export function publishPacket(topic: string, payload: Buffer, retain = false): Buffer {
  const body = Buffer.concat([str(topic), payload]);
  return Buffer.concat([Buffer.from([0x30 | (retain ? 1 : 0)]), varint(body.length), body]);
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);

export interface RawClient {
  socket: Socket;
  /** CONNACK return code, or 'closed' when the broker closed without one */
  connack: Promise<number | 'closed'>;
  closed: Promise<void>;
  /** resolves at the next PINGRESP (the broker handles one client's packets in order) */
  ping(): Promise<boolean>;
  /** writes, waiting for drain; false once the socket is gone */
  write(data: Buffer): Promise<boolean>;
}

export function rawClient(port: number, connectWith?: Parameters<typeof connectPacket>[0]): RawClient {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  let onConnack: (code: number) => void = () => {};
  const pingWaiters: Array<(ok: boolean) => void> = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const connack = new Promise<number | 'closed'>((resolve) => {
    onConnack = resolve;
    void closed.then(() => resolve('closed'));
  });
  void closed.then(() => pingWaiters.splice(0).forEach((w) => w(false)));
  socket.on('data', (chunk) => {
    received = Buffer.concat([received, chunk]);
    while (received.length >= 2 && received.length >= 2 + received[1]!) {
      const type = received[0]! >> 4;
      if (type === 2) onConnack(received[3]!);
      if (type === 13) pingWaiters.shift()?.(true);
      received = received.subarray(2 + received[1]!);
      if (type === 3) received = Buffer.alloc(0); // deliveries are not parsed here
    }
  });
  if (connectWith) socket.write(connectPacket(connectWith));
  const write = (data: Buffer) =>
    new Promise<boolean>((resolve) => {
      if (socket.destroyed) return resolve(false);
      if (socket.write(data)) return resolve(true);
      const done = (ok: boolean) => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  const ping = () =>
    new Promise<boolean>((resolve) => {
      if (socket.destroyed) return resolve(false);
      pingWaiters.push(resolve);
      socket.write(PINGREQ);
    });
  return { socket, connack, closed, ping, write };
}

/** Resident set of a process, MiB. */
export const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Samples a process's RSS every 10 ms while `work` runs; returns the highest growth seen, MiB. */
export async function peakGrowthMiB(pid: number, work: () => Promise<unknown>, settleMs = 500): Promise<number> {
  const baseline = rssMiB(pid);
  let peak = baseline;
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 10);
  try {
    await work();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, rssMiB(pid));
  return peak - baseline;
}
