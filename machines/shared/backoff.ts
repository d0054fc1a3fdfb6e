/** Exponential backoff with "equal jitter", computed without randomness: the jitter comes
 * from a seed the runtime hands in, so a chart stays pure and a test can predict the delay. */
export interface BackoffPolicy {
  /** delay before the first retry, in ms */
  minMs: number;
  /** ceiling for any single delay, in ms */
  maxMs: number;
}

/** A deterministic value in [0, 1) for (seed, attempt): mulberry32 over the pair. */
export function unitNoise(seed: number, attempt: number): number {
  let t = (seed ^ Math.imul(attempt + 1, 0x9e3779b1)) >>> 0;
  t = (t + 0x6d2b79f5) >>> 0;
  let r = Math.imul(t ^ (t >>> 15), t | 1);
  r ^= r + Math.imul(r ^ (r >>> 7), r | 61);
  return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
}

/** Delay before retry number `attempt` (1-based): half fixed, half jittered, capped. */
export function backoffMs(policy: BackoffPolicy, attempt: number, seed: number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(policy.maxMs, policy.minMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * unitNoise(seed, attempt));
}
