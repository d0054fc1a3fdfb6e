import { transition, type AnyEventObject, type AnyMachineSnapshot, type AnyStateMachine } from 'xstate';

/**
 * The states among `states` from which no state that satisfies `goal` can be reached, walking
 * the graph of `states` × `eventsIn` backwards from the goal (one pass, not a search per state).
 */
export function deadEnds<S extends AnyMachineSnapshot>(
  machine: AnyStateMachine,
  states: S[],
  eventsIn: (state: S) => AnyEventObject[],
  serialize: (state: S) => string,
  goal: (state: S) => boolean,
): S[] {
  const sources = new Map<string, Set<string>>();
  for (const state of states) {
    for (const event of eventsIn(state)) {
      const [next] = transition(machine, state, event);
      const to = serialize(next as S);
      if (!sources.has(to)) sources.set(to, new Set());
      sources.get(to)!.add(serialize(state));
    }
  }
  const reaches = new Set(states.filter(goal).map(serialize));
  for (const frontier = [...reaches]; frontier.length > 0; ) {
    for (const from of sources.get(frontier.pop()!) ?? []) {
      if (reaches.has(from)) continue;
      reaches.add(from);
      frontier.push(from);
    }
  }
  return states.filter((s) => !reaches.has(serialize(s)));
}
