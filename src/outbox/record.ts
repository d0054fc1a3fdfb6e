import { crc32 } from 'node:zlib';

/**
 * One record of the outbox log, little-endian:
 *   magic u32 | type u8 | seq u64 | body length u32 | crc32 u32 (of type, seq, length, body) | body
 * A message's body is: flags u8 (qos in bits 0-1, retain in bit 2) | topic length u16 | topic | payload.
 * ACK and DROP bodies are empty: the seq names the message they settle.
 */
export const MAGIC = 0x424f5645; // "EVOB"
export const HEADER_BYTES = 21;

export const enum RecordType {
  Message = 1,
  Ack = 2,
  Drop = 3,
}

export interface OutboxMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

export type LogRecord = { type: RecordType.Message; seq: number; message: OutboxMessage } | { type: RecordType.Ack | RecordType.Drop; seq: number };

export function encodeMessage(seq: number, message: OutboxMessage): Buffer {
  const topic = Buffer.from(message.topic, 'utf8');
  const body = Buffer.allocUnsafe(3 + topic.length + message.payload.length);
  body.writeUInt8((message.qos & 3) | (message.retain ? 4 : 0), 0);
  body.writeUInt16LE(topic.length, 1);
  topic.copy(body, 3);
  message.payload.copy(body, 3 + topic.length);
  return encode(RecordType.Message, seq, body);
}

export const encodeSettle = (type: RecordType.Ack | RecordType.Drop, seq: number) => encode(type, seq, Buffer.alloc(0));

function encode(type: RecordType, seq: number, body: Buffer): Buffer {
  const record = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  record.writeUInt32LE(MAGIC, 0);
  record.writeUInt8(type, 4);
  record.writeBigUInt64LE(BigInt(seq), 5);
  record.writeUInt32LE(body.length, 13);
  body.copy(record, HEADER_BYTES);
  record.writeUInt32LE(checksum(record, body.length), 17);
  return record;
}

/** CRC over type, seq and length (bytes 4-16) and the body. */
function checksum(buf: Buffer, bodyLength: number, at = 0): number {
  const head = crc32(buf.subarray(at + 4, at + 17));
  return crc32(buf.subarray(at + HEADER_BYTES, at + HEADER_BYTES + bodyLength), head);
}

export type Decoded = { record: LogRecord; next: number } | { torn: true } | { corrupt: true };

/** Decodes the record at `at`; `torn` when the buffer ends inside it, `corrupt` when it does not check. */
export function decodeAt(buf: Buffer, at: number): Decoded {
  if (at + HEADER_BYTES > buf.length) return { torn: true };
  if (buf.readUInt32LE(at) !== MAGIC) return { corrupt: true };
  const type = buf.readUInt8(at + 4);
  const length = buf.readUInt32LE(at + 13);
  if (type < RecordType.Message || type > RecordType.Drop) return { corrupt: true };
  if (at + HEADER_BYTES + length > buf.length) return { torn: true };
  if (checksum(buf, length, at) !== buf.readUInt32LE(at + 17)) return { corrupt: true };
  const seq = Number(buf.readBigUInt64LE(at + 5));
  const next = at + HEADER_BYTES + length;
  if (type !== RecordType.Message) return { record: { type, seq }, next };
  const body = buf.subarray(at + HEADER_BYTES, next);
  const flags = body.readUInt8(0);
  const topicLength = body.readUInt16LE(1);
  const message: OutboxMessage = {
    qos: (flags & 3) as 0 | 1,
    retain: (flags & 4) !== 0,
    topic: body.toString('utf8', 3, 3 + topicLength),
    payload: Buffer.from(body.subarray(3 + topicLength)),
  };
  return { record: { type, seq, message }, next };
}
