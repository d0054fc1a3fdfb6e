import type { AnyActorRef } from 'xstate';
import type { ActorChanges } from '../observe.js';
import { ActorPaths, actorView, stateView } from '../views.js';

/** Event types kept per actor per coalescing window (the newest). */
const MAX_EVENTS = 8;

/** A connected /ws client as the broadcast sees it: takes a text frame, or drops it when too slow. */
export type BroadcastClient = (text: string) => void;

/**
 * The tree's changes for every /ws client at once: one subscription, one coalescing timer,
 * and each change turned into JSON once, the same string sent to all (a per-client view and
 * stringify made 500 idle clients slow the whole agent down). The whole tree is serialised at
 * most once between two changes, however many clients ask for it.
 */
export class ChangeBroadcast {
  private readonly clients = new Set<BroadcastClient>();
  private readonly dirty = new Map<string, { ref: AnyActorRef; path: string[]; events: string[] }>();
  private readonly paths = new ActorPaths();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private state: { text: string; root: AnyActorRef } | undefined;
  private flushedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly changes: ActorChanges,
    private readonly root: () => AnyActorRef | undefined,
    private readonly coalesceMs: number,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Starts sending changes to `client`; returns its removal. */
  add(client: BroadcastClient): () => void {
    this.clients.add(client);
    this.unsubscribe ??= this.changes.subscribe((ref, eventType) => this.onChange(ref, eventType));
    return () => {
      this.clients.delete(client);
      if (this.clients.size > 0) return;
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.dirty.clear();
    };
  }

  /** {"type":"state",…} of the whole tree, serialised again only after a change. */
  stateText(): string | undefined {
    const root = this.root();
    if (!root) return undefined;
    // Without subscribers nothing says when it changed: no cache then.
    if (this.state?.root === root && this.unsubscribe) return this.state.text;
    const text = JSON.stringify({ type: 'state', ...stateView(root) });
    this.state = { text, root };
    return text;
  }

  private onChange(ref: AnyActorRef, eventType: string): void {
    this.state = undefined;
    const root = this.root();
    if (!root) return;
    const path = this.paths.of(root, ref);
    const key = path.join('/');
    const entry = this.dirty.get(key) ?? { ref, path, events: [] };
    entry.events.push(eventType);
    if (entry.events.length > MAX_EVENTS) entry.events.shift();
    this.dirty.set(key, entry);
    // The first change after a quiet spell goes out at once (after the changes of this same turn
    // of the event loop); later ones wait for the window: still at most one message per actor per
    // coalesceMs, but a lone change (an outbox pause) is not held back 100 ms for nothing.
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, this.flushedAt + this.coalesceMs - performance.now()));
  }

  private flush(): void {
    this.timer = undefined;
    this.flushedAt = performance.now();
    const texts: string[] = [];
    for (const { ref, path, events } of this.dirty.values()) {
      const { children: _omitted, ...actor } = actorView(ref, 0);
      texts.push(JSON.stringify({ type: 'actor', path, actor, events }));
    }
    this.dirty.clear();
    for (const client of [...this.clients]) for (const text of texts) client(text);
  }
}
