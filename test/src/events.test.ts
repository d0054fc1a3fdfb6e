import { describe, expect, it } from 'vitest';
import { Topic } from '../../src/events.js';

describe('Topic', () => {
  it('sends each event to every listener whose keys match, and stops after unsubscribe', () => {
    const topic = new Topic<{ device: string; n: number }>((e) => e.device);
    const all: number[] = [];
    const kitchen: number[] = [];
    const stopAll = topic.subscribe((e) => all.push(e.n));
    topic.subscribe((e) => kitchen.push(e.n), new Set(['kitchen']));
    topic.publish({ device: 'kitchen', n: 1 });
    topic.publish({ device: 'garage', n: 2 });
    stopAll();
    topic.publish({ device: 'kitchen', n: 3 });
    expect(all).toEqual([1, 2]);
    expect(kitchen).toEqual([1, 3]);
    expect(topic.listenerCount).toBe(1);
  });

  it('keeps delivering to the others when one listener throws, and reports the error', () => {
    const errors: unknown[] = [];
    const topic = new Topic<number>(undefined, (error) => errors.push(error));
    const got: number[] = [];
    topic.subscribe(() => {
      throw new Error('broken');
    });
    topic.subscribe((n) => got.push(n));
    topic.publish(7);
    expect(got).toEqual([7]);
    expect(String(errors[0])).toMatch(/broken/);
  });

  it('counts the same function subscribed twice as two subscriptions', () => {
    const topic = new Topic<number>();
    const got: number[] = [];
    const listener = (n: number) => got.push(n);
    const first = topic.subscribe(listener);
    topic.subscribe(listener);
    topic.publish(1);
    first();
    topic.publish(2);
    expect(got).toEqual([1, 1, 2]);
  });
});
