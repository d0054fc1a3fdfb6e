import type { SimulatedClock } from 'xstate';

/** Moves a simulated clock and lets promise actors settle (they resolve on microtasks). */
export async function advance(clock: SimulatedClock, ms: number): Promise<void> {
  clock.increment(ms);
  await flush();
}

export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
