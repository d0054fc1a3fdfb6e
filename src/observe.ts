import type { AnyActorRef, InspectionEvent } from 'xstate';
import { Topic } from './events.js';
import type { Logger } from './log.js';

/** `eventType`: the event that produced the new snapshot (for the dashboard's transition list). */
export type ChangeListener = (ref: AnyActorRef, eventType: string) => void;

/**
 * Every snapshot change of every actor in the system, from one inspection observer
 * (it sees actors spawned later too). /ws subscribes here; transitions are logged here,
 * in one place, instead of by log actions in the charts.
 */
export class ActorChanges {
  private readonly changes: Topic<{ ref: AnyActorRef; eventType: string }>;

  constructor(private readonly log?: Logger) {
    this.changes = new Topic(undefined, (error) => this.log?.error({ err: String(error) }, 'change listener failed'));
  }

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    const ref = event.actorRef as AnyActorRef;
    const snapshot = event.snapshot as { value?: unknown; status: string };
    if (this.log?.isLevelEnabled('debug') && snapshot.value !== undefined) {
      this.log.debug({ actor: ref.id, state: snapshot.value, status: snapshot.status, event: event.event.type }, 'transition');
    }
    this.changes.publish({ ref, eventType: event.event.type });
  };

  subscribe(listener: ChangeListener): () => void {
    return this.changes.subscribe(({ ref, eventType }) => listener(ref, eventType));
  }
}
