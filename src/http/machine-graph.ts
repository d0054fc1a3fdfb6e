import type { AnyStateMachine } from 'xstate';

/**
 * A machine's definition as plain data (states, transitions), for drawing it: the dashboard's
 * statecharts (laid out at build time by scripts/dashboard-build.mjs) and `npm run statecharts`
 * read the same registry, machines/index.ts. Nodes are named by their path of keys from the
 * root ("running.step"), which is also what a snapshot's value names, so a live actor's active
 * states can be matched against the drawing.
 */
export interface GraphNode {
  path: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial?: string;
  tags: string[];
  invokes: string[];
  children: GraphNode[];
}

/** Every transition from `source` to `target`, merged: one arrow, a label per event. */
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  events: string[];
}

export interface MachineGraph {
  name: string;
  id: string;
  root: GraphNode;
  edges: GraphEdge[];
}

/** The parts of XState's StateNode read here (its public fields; the types are not exported in this shape). */
interface StateNodeLike {
  key: string;
  path: string[];
  type: GraphNode['type'];
  states: Record<string, StateNodeLike>;
  initial?: { target: StateNodeLike[] };
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
  invoke: Array<{ src: unknown; id: string }>;
  tags: string[];
}
interface TransitionLike {
  eventType: string;
  target?: StateNodeLike[];
  guard?: unknown;
}

/** "after 5s" for xstate.after.<delay>…, "done: fetchBlob" for xstate.done.actor.fetchBlob. */
export function eventLabel(eventType: string): string {
  const after = /^xstate\.after\.(.+?)\.[^.]+(\.|$)/.exec(eventType);
  if (after) return `after ${after[1]}`;
  // invocations without an id get a generated one ("0.job.running.step"): the state says which
  const actor = (id: string) => (/^\d+\./.test(id) ? '' : `: ${id}`);
  if (eventType.startsWith('xstate.done.actor.')) return `done${actor(eventType.slice(18))}`;
  if (eventType.startsWith('xstate.error.actor.')) return `error${actor(eventType.slice(19))}`;
  return eventType;
}

/** " [isValid]", " [and a, b]" or "" */
export function guardLabel(guard: unknown): string {
  if (!guard) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  if (typeof guard === 'object' && 'type' in guard) {
    const params = (guard as { params?: unknown }).params;
    return ` [${(guard as { type: string }).type}${params && typeof params === 'object' ? ` ${Object.values(params).join(',')}` : ''}]`;
  }
  const composed = guard as { name?: string; guards?: unknown[] };
  if (typeof guard === 'function' && composed.guards) return ` [${composed.name} ${composed.guards.map((g) => guardLabel(g).slice(2, -1)).join(', ')}]`;
  return ' [guard]';
}

const pathOf = (node: StateNodeLike) => node.path.join('.');

function describeNode(node: StateNodeLike, edges: Map<string, GraphEdge>): GraphNode {
  const transitions = [...[...node.transitions.values()].flat(), ...(node.always ?? []).map((t) => ({ ...t, eventType: 'always' }))];
  for (const t of transitions) {
    // a transition without a target changes no state (actions only): nothing to draw
    for (const target of t.target ?? []) {
      const id = `${pathOf(node)}->${pathOf(target)}`;
      const edge = edges.get(id) ?? { id, source: pathOf(node), target: pathOf(target), events: [] };
      const label = `${eventLabel(t.eventType)}${guardLabel(t.guard)}`;
      if (!edge.events.includes(label)) edge.events.push(label);
      edges.set(id, edge);
    }
  }
  const initial = node.type === 'compound' ? node.initial?.target[0] : undefined;
  return {
    path: pathOf(node),
    key: node.key,
    type: node.type,
    ...(initial ? { initial: pathOf(initial) } : {}),
    tags: [...node.tags],
    invokes: node.invoke.map((i) => (typeof i.src === 'string' ? i.src : i.id)),
    children: Object.values(node.states).map((child) => describeNode(child, edges)),
  };
}

export function describeMachine(name: string, machine: AnyStateMachine): MachineGraph {
  const edges = new Map<string, GraphEdge>();
  const root = describeNode(machine.root as unknown as StateNodeLike, edges);
  return { name, id: machine.id, root, edges: [...edges.values()] };
}
