import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PacketSizeGuard } from '../../../src/broker/packet-guard.js';
import { publishPacket, varint } from '../../support/mqtt-raw.js';

/** A guard on a real loopback socket: returns what passed through, and the oversize length seen. */
async function through(maxPacketBytes: number, send: Buffer[]) {
  const passed: Buffer[] = [];
  let oversize: number | undefined;
  const server = createServer((socket: Socket) => {
    const guard = new PacketSizeGuard(socket, maxPacketBytes, (length) => (oversize = length));
    guard.on('data', (chunk: Buffer) => passed.push(chunk));
    guard.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  client.on('error', () => {});
  for (const part of send) client.write(part);
  client.end();
  await new Promise((resolve) => client.once('close', resolve));
  await new Promise((resolve) => server.close(resolve));
  return { passed: Buffer.concat(passed), oversize };
}

describe('packet size guard', () => {
  it('passes packets up to the limit unchanged, split anywhere', async () => {
    const packets = Buffer.concat([publishPacket('a/b', Buffer.alloc(200, 1)), Buffer.from([0xc0, 0x00]), publishPacket('c', Buffer.alloc(1000, 2))]);
    const parts = [packets.subarray(0, 1), packets.subarray(1, 2), packets.subarray(2, 300), packets.subarray(300)];
    const { passed, oversize } = await through(1024, parts);
    expect(oversize).toBeUndefined();
    expect(passed.equals(packets)).toBe(true);
  });

  it('closes at the fixed header of a packet over the limit, before its body', async () => {
    const { passed, oversize } = await through(1024, [
      publishPacket('ok', Buffer.alloc(10)),
      Buffer.concat([Buffer.from([0x30]), varint(100 * 1024 * 1024)]),
      Buffer.alloc(4096),
    ]);
    expect(oversize).toBe(100 * 1024 * 1024);
    expect(passed.length).toBe(publishPacket('ok', Buffer.alloc(10)).length);
  });
});
