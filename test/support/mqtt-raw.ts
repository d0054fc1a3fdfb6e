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

export function publishQos1Packet(topic: string, payload: Buffer, messageId: number): Buffer {
  const body = Buffer.concat([str(topic), Buffer.from([messageId >> 8, messageId & 0xff]), payload]);
  return Buffer.concat([Buffer.from([0x32]), varint(body.length), body]);
}

export function subscribePacket(filter: string, qos: number, messageId = 1): Buffer {
  const body = Buffer.concat([Buffer.from([messageId >> 8, messageId & 0xff]), str(filter), Buffer.from([qos])]);
  return Buffer.concat([Buffer.from([0x82]), varint(body.length), body]);
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
  /** PUBLISH packets received so far */
  deliveries(): number;
}

export function rawClient(port: number, connectWith?: Parameters<typeof connectPacket>[0]): RawClient {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  let deliveries = 0;
  let onConnack: (code: number) => void = () => {};
  const pingWaiters: Array<(ok: boolean) => void> = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const connack = new Promise<number | 'closed'>((resolve) => {
    onConnack = resolve;
    void closed.then(() => resolve('closed'));
  });
  void closed.then(() => {
    for (const w of pingWaiters.splice(0)) w(false);
  });
  socket.on('data', (chunk) => {
    received = Buffer.concat([received, chunk]);
    for (let packet = nextPacket(received); packet; packet = nextPacket(received)) {
      received = received.subarray(packet.end);
      if (packet.type === 2) onConnack(packet.body[1]!);
      if (packet.type === 13) pingWaiters.shift()?.(true);
      if (packet.type === 3) deliveries++; // never acknowledged: this client reads but does not ack
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
  return { socket, connack, closed, ping, write, deliveries: () => deliveries };
}

/** One whole packet at the start of `buffer`, or undefined while incomplete. */
function nextPacket(buffer: Buffer): { type: number; body: Buffer; end: number } | undefined {
  let length = 0;
  for (let i = 1; i <= 4 && i < buffer.length; i++) {
    length += (buffer[i]! & 0x7f) * 128 ** (i - 1);
    if ((buffer[i]! & 0x80) === 0) {
      const end = i + 1 + length;
      return buffer.length >= end ? { type: buffer[0]! >> 4, body: buffer.subarray(i + 1, end), end } : undefined;
    }
  }
  return undefined;
}

/** Resident set of a process, MiB. */
export function rssMiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0; // the process is gone
  }
}

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
