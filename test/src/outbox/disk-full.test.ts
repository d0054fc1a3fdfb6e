import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox, StorageError, type OutboxLimits } from '../../../src/outbox/queue.js';
import { waitFor } from '../../support/ports.js';
import { canMount, mountTmpfs } from '../../support/tmpfs.js';

const limits: OutboxLimits = { maxMessages: 1000, maxBytes: 64 << 20, overflow: 'rejectNew', segmentBytes: 16 << 20, storageProbeMs: 50 };
const message = (i: number, bytes: number) => ({ topic: `full/${i}`, payload: Buffer.alloc(bytes, i % 251), qos: 1 as const, retain: false });

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe.skipIf(!canMount)('Outbox on a disk that fills up (a real 1 MiB tmpfs)', () => {
  it('acknowledges only messages written whole (a short write is not success) and keeps every one of them', async () => {
    const fs = mountTmpfs('1m');
    cleanups.push(fs.unmount);
    const dir = join(fs.dir, 'outbox');
    const outbox = await Outbox.open(dir, limits);
    const accepted: number[] = [];
    let refusal: unknown;
    for (let i = 0; i < 10 && !refusal; i++) {
      await outbox.enqueue(message(i, 300_000)).then(
        () => accepted.push(i),
        (error) => (refusal = error),
      );
    }
    // 300 KB writes on 1 MiB: the fourth is written short (about 150 KB) and must not be acknowledged.
    expect(accepted).toEqual([0, 1, 2]);
    expect(refusal).toBeInstanceOf(StorageError);
    expect(refusal).toMatchObject({ code: 'disk_full' });
    expect(outbox.stats()).toMatchObject({ depth: 3, enqueued: 3, refused: 1 });
    expect(outbox.stats().unwritable).toMatch(/^disk_full: /);
    // Refused at once from now on, with the reason, until the disk takes writes again.
    await expect(outbox.enqueue(message(99, 10))).rejects.toThrow(/the outbox refuses new messages: writing the outbox log/);
    await outbox.close();

    const reopened = await Outbox.open(dir, limits);
    const back: Array<{ topic: string; bytes: number; intact: boolean }> = [];
    for (let m = reopened.next(); m; m = reopened.next()) {
      const i = Number(m.message.topic.split('/')[1]);
      back.push({ topic: m.message.topic, bytes: m.message.payload.length, intact: m.message.payload.every((b) => b === i % 251) });
    }
    expect(back).toEqual([0, 1, 2].map((i) => ({ topic: `full/${i}`, bytes: 300_000, intact: true })));
    expect(reopened.stats()).toMatchObject({ tornBytes: 0, corruptRegions: 0 }); // the partial record was cut off at once
    await reopened.close();
  });

  it('leaves the unwritable state by itself once space returns, and delivers what it held meanwhile', async () => {
    const fs = mountTmpfs('1m');
    cleanups.push(fs.unmount);
    const ballast = join(fs.dir, 'ballast');
    writeFileSync(ballast, Buffer.alloc(700_000));
    const outbox = await Outbox.open(join(fs.dir, 'outbox'), limits);
    cleanups.push(() => outbox.close());
    const accepted: number[] = [];
    for (let i = 0; i < 20; i++) {
      const ok = await outbox.enqueue(message(i, 50_000)).then(
        () => true,
        () => false,
      );
      if (!ok) break;
      accepted.push(i);
    }
    expect(accepted.length).toBeGreaterThan(0);
    expect(outbox.stats().unwritable).not.toBeNull();
    // Delivery goes on while new messages are refused.
    const first = outbox.next()!;
    outbox.ack(first.seq);
    expect(outbox.stats().delivered).toBe(1);

    rmSync(ballast);
    await waitFor(() => outbox.stats().unwritable === null || undefined, 'the disk to be taken back into use');
    const seq = await outbox.enqueue(message(100, 50_000));
    expect(seq).toBeGreaterThan(first.seq);
    expect(outbox.stats().depth).toBe(accepted.length); // one delivered, one new
  });
});
