import { createActor, setup, type AnyActorLogic, type AnyEventObject } from 'xstate';

/** Invokes an actor from a tiny machine that records every event the actor sends back. */
export function record(logic: AnyActorLogic, input: unknown) {
  const events: AnyEventObject[] = [];
  const errors: unknown[] = [];
  const machine = setup({ actors: { subject: logic } }).createMachine({
    invoke: { src: 'subject', input, onError: { actions: ({ event }) => errors.push(event.error) } },
    on: { '*': { actions: ({ event }) => events.push(event) } },
  });
  const actor = createActor(machine);
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return {
    events,
    errors,
    types: () => events.map((e) => e.type),
    stop: () => actor.stop(),
  };
}
