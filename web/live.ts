/** The live picture of the agent, fed by /ws: the actor tree, each actor's last transitions
 * (with the events that caused them) and the chosen device's readings. Views subscribe with useLive(). */
import { useEffect, useState } from 'preact/hooks';

export interface Actor {
  id: string;
  machine?: string;
  status: 'active' | 'done' | 'error' | 'stopped';
  state: StateValue | null;
  tags: string[];
  context: Record<string, any> | null;
  children: Actor[];
}
export type StateValue = string | { [key: string]: StateValue };

export interface Transition {
  at: number;
  from: string;
  to: string;
  events: string[];
}

export interface Reading {
  at: number;
  device: string;
  reading: Record<string, unknown>;
}

/** Transitions kept per actor, and readings kept for the chosen device (only the newest are shown). */
const MAX_TRANSITIONS = 20;
const MAX_ENDED = 20;
export const MAX_READINGS = 20;
/** A device streaming 1,000 readings/s redraws its list at most this often, not per frame. */
const READINGS_RENDER_MS = 100;

export const live = {
  phase: 'starting' as string,
  tree: null as Actor | null,
  /** by actor path ("supervisor/jobs/job:42") */
  transitions: new Map<string, Transition[]>(),
  /** dynamic children that finished (a job that succeeded, a device gone), newest last, for a
   * while after they leave the tree: their last state stays inspectable */
  ended: new Map<string, { path: string[]; actor: Actor }>(),
  readings: [] as Reading[],
  readingCount: 0,
  /** what the readings list draws: a copy of `readings` and `readingCount` taken at most every
   * READINGS_RENDER_MS, so renders for other frames (outbox counters) leave the list alone */
  shown: { readings: [] as Reading[], count: 0 },
  /** the newest monitoring sample of the device the Monitoring view watches (/ws `sample` frames) */
  sample: null as { device: string; ts: number; values: Record<string, number> } | null,
  /** when the last message from /ws arrived (ms), for the header and the tests */
  lastUpdate: 0,
  updates: 0,
};

const listeners = new Set<() => void>();
let scheduled = false;
/** Re-render at most once per animation frame, however fast frames arrive (1,000 readings/s). */
function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    for (const l of listeners) l();
  });
}

let readingsDue = false;
let readingsDrawnAt = Number.NEGATIVE_INFINITY;
/**
 * Readings are drawn at most every READINGS_RENDER_MS: at once after a quiet spell (a lone
 * line shows without delay), else at the end of the interval, the newest 20 then.
 */
function readingsChanged() {
  if (readingsDue) return;
  readingsDue = true;
  setTimeout(drawReadings, Math.max(0, readingsDrawnAt + READINGS_RENDER_MS - performance.now()));
}

function drawReadings() {
  readingsDue = false;
  readingsDrawnAt = performance.now();
  live.shown = { readings: [...live.readings], count: live.readingCount };
  changed();
}

export function useLive(): typeof live {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((n) => n + 1);
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return live;
}

/** "running.step" for {running: 'step'}; "a.b,c.d" for parallel regions. */
export function describe(value: StateValue | null): string {
  if (value === null) return '–';
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => (typeof v === 'string' ? `${k}.${v}` : `${k}.${describe(v)}`))
    .join(', ');
}

/** Every active state path of a value: {a: {b: 'c'}} → ['a', 'a.b', 'a.b.c']. */
export function activePaths(value: StateValue | null, prefix = ''): string[] {
  if (value === null) return [];
  if (typeof value === 'string') return [prefix + value];
  return Object.entries(value).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

export function findActor(path: string[]): Actor | undefined {
  return findLive(path) ?? live.ended.get(path.join('/'))?.actor;
}

function findLive(path: string[]): Actor | undefined {
  let node: Actor | undefined = live.tree ?? undefined;
  if (!node || node.id !== path[0]) return undefined;
  for (const id of path.slice(1)) {
    node = node.children.find((c: Actor) => c.id === id);
    if (!node) return undefined;
  }
  return node;
}

/** Every actor with its path, depth first. */
export function allActors(node = live.tree, prefix: string[] = []): Array<{ path: string[]; actor: Actor }> {
  if (!node) return [];
  const path = [...prefix, node.id];
  return [{ path, actor: node }, ...node.children.flatMap((c) => allActors(c, path))];
}

function record(path: string[], before: Actor | undefined, after: Actor, events: string[]) {
  const from = describe(before?.state ?? null);
  const to = describe(after.state);
  if (before && from === to && before.status === after.status) return;
  const key = path.join('/');
  const list = live.transitions.get(key) ?? [];
  list.unshift({ at: Date.now(), from: before ? from : '(new)', to: after.status === 'active' ? to : `${to} (${after.status})`, events });
  if (list.length > MAX_TRANSITIONS) list.length = MAX_TRANSITIONS;
  live.transitions.set(key, list);
}

function replaceActor(path: string[], actor: Omit<Actor, 'children'>, events: string[]) {
  const parentPath = path.slice(0, -1);
  const parent = parentPath.length ? findLive(parentPath) : undefined;
  if (!live.tree || (parentPath.length && !parent)) return false;
  const siblings = parent ? parent.children : null;
  const before = siblings ? siblings.find((c) => c.id === actor.id) : live.tree;
  record(path, before, { ...actor, children: [] }, events);
  const next: Actor = { ...actor, children: before?.children ?? [] };
  if (!siblings) live.tree = next;
  else if (before) siblings[siblings.indexOf(before)] = next;
  else siblings.push(next);
  // stopped dynamic children (a finished job, a gone device) leave the tree, as they do in the agent
  if (siblings && actor.status !== 'active') {
    siblings.splice(siblings.indexOf(next), 1);
    if (!actor.machine) return true; // a finished promise or callback actor: nothing to draw
    live.ended.delete(path.join('/'));
    live.ended.set(path.join('/'), { path, actor: next });
    if (live.ended.size > MAX_ENDED) live.ended.delete(live.ended.keys().next().value!);
  }
  return true;
}

/** Applies one /ws frame; returns false for a frame this page cannot place (it then asks for the whole tree). */
export function apply(message: any): boolean {
  // bench/dashboard.mjs reads this mark: DOMContentLoaded → first live update
  if (live.updates === 0) performance.mark('edgevisor:first-update');
  live.lastUpdate = performance.now();
  live.updates++;
  let ok = true;
  if (message.type === 'state') {
    live.phase = message.status;
    live.tree = message.tree;
  } else if (message.type === 'actor') {
    ok = replaceActor(message.path, message.actor, message.events ?? []);
    if (message.path.length === 1 && live.tree) live.phase = phaseOf(live.tree);
  } else if (message.type === 'reading' || message.type === 'readings') {
    // one reading, or a batch of them (the page subscribes with batch: true)
    for (const frame of message.type === 'readings' ? message.frames : [message]) if (frame.type === 'reading') addReading(frame);
    readingsChanged();
    return ok;
  } else if (message.type === 'sample') {
    live.sample = { device: message.device, ts: message.ts, values: message.values };
  }
  changed();
  return ok;
}

function addReading(frame: { device: string; reading: Record<string, unknown> }) {
  live.readingCount++;
  live.readings.push({ at: Date.now(), device: frame.device, reading: frame.reading });
  if (live.readings.length > MAX_READINGS) live.readings.shift();
}

/** The supervisor's phase, as /health and the 'state' frame name it. */
function phaseOf(root: Actor): string {
  if (root.status !== 'active') return 'stopped';
  if (typeof root.state === 'object' && root.state && 'running' in root.state) return root.tags.includes('degraded') ? 'degraded' : 'running';
  return typeof root.state === 'string' ? root.state : 'running';
}

export function clearReadings() {
  live.readings = [];
  live.shown = { readings: [], count: live.readingCount };
  changed();
}
