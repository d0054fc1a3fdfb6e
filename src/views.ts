import type { AnyActorRef, StateValue } from 'xstate';
import { concerns, type Concern, type SupervisorContext } from '../machines/supervisor.js';

/** Plain, versioned JSON shapes of the actor tree. Routes and /ws render snapshots only
 * through here; a raw snapshot holds actor refs and internals and is never sent. */

export const VIEW_VERSION = 1;

export interface ActorView {
  id: string;
  /** the id of the state machine this actor runs (absent for promise/callback actors), so a
   * dashboard can draw it from GET /api/v1/machines */
  machine?: string;
  status: 'active' | 'done' | 'error' | 'stopped';
  state: StateValue | null;
  tags: string[];
  context: Record<string, unknown> | null;
  children: ActorView[];
}

export type Phase = 'starting' | 'running' | 'degraded' | 'stopping' | 'stopped';

interface AnySnapshot {
  status: ActorView['status'];
  value?: StateValue;
  tags?: Set<string>;
  context?: unknown;
  children?: Record<string, AnyActorRef | undefined>;
  hasTag?: (tag: string) => boolean;
}

const snapshotOf = (ref: AnyActorRef) => ref.getSnapshot() as AnySnapshot;

/** Context minus private keys ("_"-prefixed) and anything that is not plain data. */
export function publicContext(context: unknown): Record<string, unknown> | null {
  if (!context || typeof context !== 'object') return null;
  return JSON.parse(
    JSON.stringify(context, (key, value) =>
      key.startsWith('_') || (value && typeof value === 'object' && typeof value.send === 'function') ? undefined : value,
    ),
  );
}

/** One actor and, unless `depth` is 0, its descendants. */
export function actorView(ref: AnyActorRef, depth = Infinity): ActorView {
  const snap = snapshotOf(ref);
  const children = liveChildren(ref);
  const logic = (ref as { logic?: { id?: unknown; root?: unknown } }).logic;
  return {
    id: ref.id,
    ...(logic?.root && typeof logic.id === 'string' ? { machine: logic.id } : {}),
    status: snap.status,
    state: snap.value ?? null,
    tags: [...(snap.tags ?? [])].sort(),
    context: publicContext(snap.context),
    children: depth > 0 ? children.map((c) => actorView(c, depth - 1)) : [],
  };
}

const liveChildren = (ref: AnyActorRef) => Object.values(snapshotOf(ref).children ?? {}).filter((c): c is AnyActorRef => Boolean(c));

/**
 * The ids from the root down to actors, read from the tree's public snapshots (never from
 * xstate's internal parent link). A path, once seen, is kept for as long as its actor lives, so
 * an actor that has just left its parent (a job that finished) still reports where it was.
 */
export class ActorPaths {
  private readonly known = new WeakMap<AnyActorRef, string[]>();

  of(root: AnyActorRef, ref: AnyActorRef): string[] {
    const path = this.known.get(ref) ?? this.find(root, ref, [root.id]) ?? [ref.id];
    this.known.set(ref, path);
    // its children's paths are known now, before any of them might leave
    for (const child of liveChildren(ref)) if (!this.known.has(child)) this.known.set(child, [...path, child.id]);
    return path;
  }

  private find(node: AnyActorRef, ref: AnyActorRef, path: string[]): string[] | undefined {
    if (node === ref) return path;
    for (const child of liveChildren(node)) {
      const found = this.find(child, ref, [...path, child.id]);
      if (found) {
        this.known.set(child, [...path, child.id]);
        return found;
      }
    }
    return undefined;
  }
}

export function phaseOf(root: AnyActorRef): Phase {
  const snap = snapshotOf(root);
  if (snap.status !== 'active') return 'stopped';
  const value = snap.value;
  if (typeof value === 'object' && value && 'running' in value) return snap.hasTag?.('degraded') ? 'degraded' : 'running';
  return value as Phase;
}

export function stateView(root: AnyActorRef) {
  return { version: VIEW_VERSION, status: phaseOf(root), tree: actorView(root) };
}

export interface ConcernHealth {
  state: string;
  healthy: boolean;
  reason?: string;
  /** a concern's own figures, such as the outbox's depth and drop counts */
  counters?: Record<string, unknown>;
}

export interface HealthView {
  status: 'ok' | 'unhealthy';
  phase: Phase;
  concerns: Partial<Record<Concern, ConcernHealth>>;
  reasons: string[];
}

/** Healthy when the tree is running and every enabled concern's chart carries `healthy`. */
export function healthView(root: AnyActorRef): HealthView {
  const phase = phaseOf(root);
  const snap = snapshotOf(root);
  const regions = (typeof snap.value === 'object' && snap.value && 'running' in snap.value ? snap.value.running : {}) as Record<string, string>;
  const context = snap.context as SupervisorContext;
  const result: HealthView = { status: 'ok', phase, concerns: {}, reasons: [] };
  if (phase !== 'running' && phase !== 'degraded') result.reasons.push(`supervisor: ${phase}`);
  for (const name of concerns) {
    const region = regions[name];
    if (!region || region === 'disabled') continue;
    const health = concernHealth(name, region, snap.children?.[name], context);
    result.concerns[name] = health;
    if (health.reason) result.reasons.push(`${name}: ${health.reason}`);
  }
  if (result.reasons.length > 0) result.status = 'unhealthy';
  return result;
}

function concernHealth(name: Concern, region: string, child: AnyActorRef | undefined, context: SupervisorContext): ConcernHealth {
  const crash = context.lastCrash[name]?.message ?? 'unknown error';
  if (region === 'restarting') return { state: region, healthy: false, reason: `restarting after crash ${context.restarts[name]}: ${crash}` };
  if (region === 'gaveUp') return { state: region, healthy: false, reason: `gave up after ${context.restarts[name]} crashes: ${crash}` };
  if (!child) return { state: region, healthy: false, reason: 'not running' };
  const snap = snapshotOf(child);
  const state = describeValue(snap.value ?? null);
  const own = (snap.context ?? {}) as ConcernContext;
  const counters = own.counters ? { counters: own.counters } : {};
  if (snap.hasTag?.('healthy')) return { state, healthy: true, ...counters };
  const detail = own.problem ?? own.lastError?.message ?? own.error?.message;
  return { state, healthy: false, reason: detail ? `${state}: ${detail}` : state, ...counters };
}

/** What health reads from a concern's context, where the concern has it. */
interface ConcernContext {
  counters?: Record<string, unknown>;
  problem?: string | null;
  lastError?: { message: string } | null;
  error?: { message: string } | null;
}

/** "session.online" for {session: 'online'}. */
export function describeValue(value: StateValue | null): string {
  if (value === null) return 'active';
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([key, inner]) => `${key}.${describeValue(inner as StateValue)}`)
    .join(',');
}
