import { describe, expect, it } from 'vitest';
import { ReadingBatch } from '../../../src/http/ws-batch.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const framesOf = (sent: string[]) => sent.map((t) => JSON.parse(t).frames.length);

describe('ReadingBatch', () => {
  it('sends a reading after a quiet spell at once, then gathers the next ones for the interval', async () => {
    const sent: string[] = [];
    const batch = new ReadingBatch((t) => sent.push(t), { intervalMs: 50, maxItems: 256, maxBytes: 65536 });
    batch.add('{"n":0}');
    expect(sent).toEqual(['{"type":"readings","frames":[{"n":0}]}']);
    for (let n = 1; n <= 5; n++) batch.add(`{"n":${n}}`);
    expect(sent).toHaveLength(1);
    await sleep(80);
    expect(JSON.parse(sent[1]).frames).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
  });

  it('sends at once when maxItems or maxBytes wait, whichever comes first', () => {
    const sent: string[] = [];
    const batch = new ReadingBatch((t) => sent.push(t), { intervalMs: 60_000, maxItems: 4, maxBytes: 100 });
    batch.add('{}'); // the quiet-spell one
    for (let i = 0; i < 8; i++) batch.add('{}');
    expect(framesOf(sent)).toEqual([1, 4, 4]);
    const big = JSON.stringify({ s: 'x'.repeat(60) }); // 68 bytes: two pass 100
    batch.add(big);
    batch.add(big);
    expect(framesOf(sent)).toEqual([1, 4, 4, 2]);
    batch.close();
  });

  it('drops what waits and its timer on close: nothing is sent afterwards', async () => {
    const sent: string[] = [];
    const batch = new ReadingBatch((t) => sent.push(t), { intervalMs: 30, maxItems: 256, maxBytes: 65536 });
    batch.add('{}');
    batch.add('{}');
    batch.close();
    await sleep(60);
    expect(framesOf(sent)).toEqual([1]);
    batch.flush(); // nothing waits
    expect(sent).toHaveLength(1);
  });
});
