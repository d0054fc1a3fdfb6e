type Pick = <T>(xs: T[]) => T;

/** Job documents for fuzzing: a valid base, mutated at random nodes, from a seeded generator. */
export function documentFuzzer(seed: number, command = '/bin/echo') {
  return mutationFuzzer(seed, (pick, junk) => ({
    version: '1.0',
    includeStdOut: pick([true, 'true', 'false', junk()]),
    steps: [
      { action: { name: 'a', type: 'runCommand', input: { command: `${command},x`, timeout: 5 }, allowStdErr: 1 } },
      { action: { name: 'b', type: 'runCommand', input: { command, args: ['1'] }, ignoreStepFailure: 'true' } },
    ],
    finalStep: { action: { name: 'c', type: 'runCommand', input: { command, args: [] } } },
  }));
}

/** Any JSON payload for fuzzing: `base` (built with the generator's own pick and junk), mutated at random nodes. */
export function mutationFuzzer(seed: number, base: (pick: Pick, junk: () => unknown) => unknown) {
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const pick: Pick = (xs) => xs[Math.floor(random() * xs.length)];
  const junk = (): unknown =>
    pick([null, undefined, 0, -1, 1.5, 1e9, '', 'true', 'x'.repeat(Math.floor(random() * 50)), '\u0000', '😀', [], {}, [1, 'a'], { a: 1 }, true, false]);
  /** Replaces one random node of the tree with junk, sometimes deleting a key. */
  const mutate = (node: unknown, depth = 0): unknown => {
    if (random() < 0.3 || depth > 5 || node === null || typeof node !== 'object') return random() < 0.5 ? junk() : node;
    const copy: Record<string, unknown> = Array.isArray(node) ? ([...node] as unknown as Record<string, unknown>) : { ...(node as object) };
    const keys = Object.keys(copy);
    if (keys.length === 0) return junk();
    const key = pick(keys);
    copy[key] = mutate(copy[key], depth + 1);
    if (random() < 0.1) delete copy[pick(keys)];
    return copy;
  };
  return () => {
    let doc: unknown = base(pick, junk);
    for (let m = Math.floor(random() * 4); m >= 0; m--) doc = mutate(doc);
    return doc;
  };
}
