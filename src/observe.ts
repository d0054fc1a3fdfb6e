import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Logger } from './log.js';

/** `eventType`: the event that produced the new snapshot (for the dashboard's transition list). */
export type ChangeListener = (ref: AnyActorRef, eventType: string) => void;

/**
 * Every snapshot change of every actor in the system, from one inspection observer
 * (it sees actors spawned later too). /ws subscribes here; transitions are logged here,
 * in one place, instead of by log actions in the charts.
 */
export class ActorChanges {
  private readonly listeners = new Set<ChangeListener>();

  constructor(private readonly log?: Logger) {}

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    const ref = event.actorRef as AnyActorRef;
    const snapshot = event.snapshot as { value?: unknown; status: string };
    if (this.log?.isLevelEnabled('debug') && snapshot.value !== undefined) {
      this.log.debug({ actor: ref.id, state: snapshot.value, status: snapshot.status, event: event.event.type }, 'transition');
    }
    for (const listener of this.listeners) {
      try {
        listener(ref, event.event.type);
      } catch (error) {
        this.log?.error({ err: String(error) }, 'change listener failed');
      }
    }
  };

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
