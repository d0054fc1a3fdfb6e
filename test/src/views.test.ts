import { describe, expect, it } from 'vitest';
import { assign, createActor, createMachine, setup, type AnyActorRef } from 'xstate';
import { ActorPaths } from '../../src/views.js';

const task = createMachine({ id: 'task', initial: 'running', states: { running: { on: { finish: 'done' } }, done: { type: 'final' } } });

const parent = setup({ actors: { task } }).createMachine({
  id: 'parent',
  context: { started: 0 },
  on: {
    start: { actions: assign(({ context, spawn }) => (spawn('task', { id: `task:${context.started + 1}` }), { started: context.started + 1 })) },
  },
});

describe('ActorPaths', () => {
  it('gives each actor its ids from the root down, and keeps the path of a child that finished and left', () => {
    const root = setup({ actors: { parent } }).createMachine({ id: 'root', invoke: { src: 'parent', id: 'jobs' } });
    let actor: AnyActorRef | undefined;
    const seen: Array<{ ref: AnyActorRef; state: unknown }> = [];
    const paths = new ActorPaths();
    const lines: string[] = [];
    actor = createActor(root, {
      id: 'root',
      inspect: (event) => {
        if (event.type !== '@xstate.snapshot' || !actor) return;
        seen.push({ ref: event.actorRef as AnyActorRef, state: (event.snapshot as { value?: unknown }).value });
        lines.push(paths.of(actor, event.actorRef as AnyActorRef).join('/'));
      },
    }).start();
    const jobs = actor.getSnapshot().children.jobs as AnyActorRef;
    jobs.send({ type: 'start' });
    const child = (jobs.getSnapshot() as { children: Record<string, AnyActorRef> }).children['task:1'];
    expect(paths.of(actor, child)).toEqual(['root', 'jobs', 'task:1']);
    child.send({ type: 'finish' });
    expect(seen.at(-1)?.state).toBe('done');
    expect(lines).toContain('root/jobs/task:1');
    expect(lines.at(-1)).toBe('root/jobs/task:1');
    expect(paths.of(actor, jobs)).toEqual(['root', 'jobs']);
  });
});
