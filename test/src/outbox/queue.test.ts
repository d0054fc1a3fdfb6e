import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outbox, OutboxFullError, type OutboxLimits } from '../../../src/outbox/queue.js';

const limits: OutboxLimits = { maxMessages: 1000, maxBytes: 1 << 20, overflow: 'dropOldest', segmentBytes: 1 << 20 };
const msg = (i: number, topic = 't/a') => ({ topic, payload: Buffer.from(`message ${i}`), qos: 1 as const, retain: false });
const freshDir = () => mkdtempSync(join(tmpdir(), 'edgevisor-outbox-'));
const segments = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort();

function drain(outbox: Outbox) {
  const out: Array<{ seq: number; payload: string }> = [];
  for (let m = outbox.next(); m; m = outbox.next()) out.push({ seq: m.seq, payload: m.message.payload.toString() });
  return out;
}

describe('Outbox (segment log)', () => {
  it('hands out durable messages in order and keeps the unacknowledged ones across a reopen', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, limits);
    const seqs = await Promise.all([1, 2, 3, 4].map((i) => outbox.enqueue(msg(i))));
    expect(seqs).toEqual([1, 2, 3, 4]);
    expect(drain(outbox).map((m) => m.payload)).toEqual(['message 1', 'message 2', 'message 3', 'message 4']);
    outbox.ack(1);
    outbox.ack(3);
    await outbox.close();

    const reopened = await Outbox.open(dir, limits);
    expect(drain(reopened).map((m) => m.payload)).toEqual(['message 2', 'message 4']);
    expect(reopened.stats()).toMatchObject({ depth: 2, recoveredMessages: 2 });
    expect(await reopened.enqueue(msg(5))).toBe(5); // sequence numbers go on
    await reopened.close();
  });

  it('sends everything unacknowledged again after a rewind (connection lost)', async () => {
    const outbox = await Outbox.open(freshDir(), limits);
    await Promise.all([1, 2, 3].map((i) => outbox.enqueue(msg(i))));
    drain(outbox);
    outbox.ack(1);
    outbox.rewind();
    expect(drain(outbox).map((m) => m.seq)).toEqual([2, 3]);
    await outbox.close();
  });

  it('appends only, one fdatasync per group commit, and deletes settled segments oldest first', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, { ...limits, segmentBytes: 512 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => outbox.enqueue(msg(i))));
    const stats = outbox.stats();
    expect(stats.syncs).toBeLessThan(5); // 100 messages queued in one turn share the commits
    expect(stats.bytesWritten).toBeGreaterThan(stats.payloadBytes);
    expect(stats.bytesWritten / stats.payloadBytes).toBeLessThan(4); // short payloads here: headers weigh more
    const before = segments(dir).length;
    for (let m = outbox.next(); m; m = outbox.next()) outbox.ack(m.seq);
    await outbox.enqueue(msg(1000)); // a commit writes the acks and rotates
    for (let m = outbox.next(); m; m = outbox.next()) outbox.ack(m.seq);
    await outbox.close();
    expect(segments(dir).length).toBeLessThan(before);
    expect((await Outbox.open(dir, limits)).stats().depth).toBe(0);
  });

  it('full with dropOldest: the oldest go, every drop is counted, and "full" clears once it drains', async () => {
    const outbox = await Outbox.open(freshDir(), { ...limits, maxMessages: 10 });
    for (let i = 1; i <= 12; i++) await outbox.enqueue(msg(i));
    expect(outbox.stats()).toMatchObject({ depth: 10, dropped: 2, full: true, enqueued: 12 });
    const left = drain(outbox);
    expect(left.map((m) => m.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i + 3}`));
    outbox.ack(left[0].seq);
    expect(outbox.stats().full).toBe(true); // 9 of 10: not yet under 90 %
    outbox.ack(left[1].seq);
    expect(outbox.stats()).toMatchObject({ full: false, depth: 8, delivered: 2 });
    await outbox.close();
  });

  it('full with rejectNew: the new message is refused with a clear error and the queued ones are kept', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, { ...limits, maxMessages: 2, overflow: 'rejectNew' });
    await outbox.enqueue(msg(1));
    await outbox.enqueue(msg(2));
    await expect(outbox.enqueue(msg(3))).rejects.toThrow(OutboxFullError);
    expect(outbox.stats()).toMatchObject({ depth: 2, refused: 1, dropped: 0, full: true });
    await outbox.close();
    expect(drain(await Outbox.open(dir, limits)).map((m) => m.payload)).toEqual(['message 1', 'message 2']);
  });

  it('refuses a message larger than the whole queue', async () => {
    const outbox = await Outbox.open(freshDir(), { ...limits, maxBytes: 100 });
    await expect(outbox.enqueue({ ...msg(1), payload: Buffer.alloc(200) })).rejects.toThrow(/can never fit/);
    expect(outbox.stats().refused).toBe(1);
    await outbox.close();
  });

  it('recovers from a write torn at the tail without losing the intact records', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, limits);
    for (let i = 1; i <= 10; i++) await outbox.enqueue(msg(i));
    await outbox.close();
    const last = join(dir, segments(dir).at(-1)!);
    const whole = readFileSync(last);
    appendFileSync(last, whole.subarray(0, 30)); // half a record, as a crash mid-write leaves it
    const reopened = await Outbox.open(dir, limits);
    expect(drain(reopened).map((m) => m.payload)).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i + 1}`));
    expect(reopened.stats()).toMatchObject({ tornBytes: 30, corruptRegions: 0 });
    expect(statSync(last).size).toBe(whole.length); // the torn tail was cut off
    await reopened.enqueue(msg(11));
    await reopened.close();
    expect((await Outbox.open(dir, limits)).stats().depth).toBe(11);
  });

  it('skips a corrupted record in the middle and keeps the ones after it', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, limits);
    for (let i = 1; i <= 10; i++) await outbox.enqueue(msg(i));
    await outbox.close();
    const file = join(dir, segments(dir).at(-1)!);
    const bytes = readFileSync(file);
    const fifth = bytes.indexOf('message 5');
    bytes[fifth] ^= 0xff; // one flipped bit in a payload
    writeFileSync(file, bytes);
    const reopened = await Outbox.open(dir, limits);
    const payloads = drain(reopened).map((m) => m.payload);
    expect(payloads).toHaveLength(9);
    expect(payloads).not.toContain('message 5');
    expect(payloads.at(-1)).toBe('message 10');
    expect(reopened.stats().corruptRegions).toBe(1);
    await reopened.close();
  });

  it('survives garbage appended to a segment', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, limits);
    await outbox.enqueue(msg(1));
    await outbox.close();
    appendFileSync(join(dir, segments(dir).at(-1)!), Buffer.from('not a record at all, just bytes'));
    const reopened = await Outbox.open(dir, limits);
    expect(drain(reopened).map((m) => m.payload)).toEqual(['message 1']);
    expect(reopened.stats().corruptRegions).toBe(1);
    await reopened.close();
  });
});

describe('Outbox reopened again and again', () => {
  // The messages delivered first leave ACK records in the log before the backlog that follows them.
  async function deliveredThenBacklog(dir: string, segmentBytes: number) {
    const outbox = await Outbox.open(dir, { ...limits, segmentBytes });
    for (let i = 1; i <= 10; i++) await outbox.enqueue(msg(i));
    for (const m of drain(outbox)) outbox.ack(m.seq);
    for (let i = 11; i <= 40; i++) await outbox.enqueue(msg(i)); // the broker went away: a backlog
    return outbox;
  }
  const backlog = Array.from({ length: 30 }, (_, i) => `message ${i + 11}`);

  for (const segmentBytes of [1 << 20, 400]) {
    it(`keeps the backlog through five reopens in a row (segments of ${segmentBytes} bytes)`, async () => {
      const dir = freshDir();
      await (await deliveredThenBacklog(dir, segmentBytes)).close();
      for (let round = 1; round <= 5; round++) {
        const outbox = await Outbox.open(dir, { ...limits, segmentBytes });
        expect(
          drain(outbox).map((m) => m.payload),
          `reopen ${round}`,
        ).toEqual(backlog);
        expect(outbox.stats()).toMatchObject({ depth: 30, recoveredMessages: 30 });
        await outbox.close();
      }
    });
  }

  it('keeps it when each run dies without closing (kill -9), right after its replay', async () => {
    const dir = freshDir();
    await deliveredThenBacklog(dir, 400); // never closed
    for (let round = 1; round <= 5; round++) {
      const reopened = await Outbox.open(dir, { ...limits, segmentBytes: 400 });
      expect(
        drain(reopened).map((m) => m.payload),
        `reopen ${round}`,
      ).toEqual(backlog);
      await new Promise((resolve) => setTimeout(resolve, 20)); // any unlink it started lands
    }
  });
});

describe('Outbox bounds and refusals', () => {
  it('keeps the send queue bounded by the depth while offline, however many messages the overflow drops', async () => {
    const outbox = await Outbox.open(freshDir(), { ...limits, maxMessages: 1000, segmentBytes: 64 << 20 });
    for (let i = 0; i < 200_000; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, k) => outbox.enqueue(msg(i + k))));
    const stats = outbox.stats();
    expect(stats).toMatchObject({ depth: 1000, dropped: 199_000 });
    expect(stats.sendQueueLength).toBeLessThanOrEqual(1000 + 1024);
    const handed = drain(outbox);
    expect(handed).toHaveLength(1000);
    expect(handed[0].payload).toBe('message 199000');
    await outbox.close();
  }, 60_000);

  it('refuses topics no broker should get, from any publisher, before anything is written', async () => {
    const outbox = await Outbox.open(freshDir(), limits);
    const refused = async (topic: string) =>
      outbox.enqueue(msg(1, topic)).then(
        () => 'accepted',
        (e: Error) => `${e.name === 'Error' ? e.constructor.name : e.name}: ${e.message}`,
      );
    expect(await refused('$SYS/broker/x')).toMatch(/InvalidMessageError: topic: must not start with "\$"/);
    expect(await refused('a/b/c/d/e/f/g/h/i')).toBe('InvalidMessageError: topic: has 9 levels; the limit is 8 (outbox.maxTopicLevels)');
    expect(await refused('x'.repeat(257))).toBe('InvalidMessageError: topic: is 257 bytes; the limit is 256 (outbox.maxTopicBytes)');
    expect(await refused('a/\ud800')).toMatch(/lone surrogate/);
    expect(await refused('a/+/b')).toMatch(/wildcards/);
    expect(await refused('a\u0000b')).toMatch(/NUL/);
    expect(await refused('a\nb')).toMatch(/control characters/);
    expect(await refused('a/b/c/d/e/f/g/h')).toBe('accepted');
    expect(outbox.stats()).toMatchObject({ depth: 1, refused: 7 });
    await outbox.close();

    const dollar = await Outbox.open(freshDir(), { ...limits, topics: { allowDollar: true, maxLevels: 300, maxBytes: 65_535 } });
    await expect(dollar.enqueue(msg(1, '$aws/rules/r/' + 'x/'.repeat(100)))).resolves.toBe(1);
    await dollar.close();
  });

  it('moves a message aside only once it is kept elsewhere, and not before', async () => {
    const dir = freshDir();
    const outbox = await Outbox.open(dir, limits);
    await Promise.all([1, 2, 3].map((i) => outbox.enqueue(msg(i))));
    drain(outbox);
    await expect(
      outbox.moveAside(2, async () => {
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    outbox.rewind();
    expect(drain(outbox).map((m) => m.seq)).toEqual([1, 2, 3]); // still queued
    const kept: string[] = [];
    expect(await outbox.moveAside(2, async (m) => void kept.push(m.payload.toString()))).toBe(true);
    expect(kept).toEqual(['message 2']);
    expect(outbox.stats()).toMatchObject({ depth: 2, deadLettered: 1 });
    outbox.rewind();
    expect(drain(outbox).map((m) => m.seq)).toEqual([1, 3]);
    await outbox.close();
    expect(drain(await Outbox.open(dir, limits)).map((m) => m.seq)).toEqual([1, 3]); // settled in the log
  });
});
