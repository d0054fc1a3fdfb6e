import { describe, expect, it } from 'vitest';
import { createActor, createMachine, fromPromise, SimulatedClock } from 'xstate';
import { supervisorMachine } from '../../machines/supervisor.js';
import { createLogger } from '../../src/log.js';
import { watchRestarts } from '../../src/supervision-log.js';
import { advance, flush } from '../support/clock.js';
import { fakeCallback, standIn } from '../support/fakes.js';
import { treeInput } from '../support/tree.js';

/** A concern that fails on `crash`. */
const crashing = createMachine({
  on: {
    crash: {
      actions: () => {
        throw new Error('disk on fire');
      },
    },
  },
});

describe('the supervisor log', () => {
  it('logs each crash with its reason and backoff, each restart, and the give-up with the exit to come', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const clock = new SimulatedClock();
    const machine = supervisorMachine.provide({
      actors: {
        prepare: fromPromise(async () => {}),
        drain: fromPromise(async () => {}),
        link: standIn(fakeCallback().logic),
        outbox: standIn(crashing),
        http: standIn(fakeCallback().logic),
      },
    });
    const restart = { ...treeInput.restart, maxRestarts: 1, exitAfterGiveUpMs: 30_000 };
    const actor = createActor(machine, { input: { ...treeInput, restart }, clock });
    watchRestarts(actor, log);
    actor.start();
    await flush();
    actor.getSnapshot().children.outbox!.send({ type: 'crash' });
    await flush();
    await advance(clock, actor.getSnapshot().context.retryInMs.outbox);
    actor.getSnapshot().children.outbox!.send({ type: 'crash' });
    await flush();
    const said = lines.map((l) => [l.level, l.msg, l.concern]);
    expect(said).toEqual([
      ['warn', 'concern crashed; restarting it', 'outbox'],
      ['info', 'concern restarted', 'outbox'],
      ['error', 'concern gave up; the agent exits so that it is started afresh', 'outbox'],
    ]);
    expect(lines[0]).toMatchObject({ crash: { message: expect.stringContaining('disk on fire') }, restarts: 1 });
    expect(lines[2]).toMatchObject({ restarts: 2, exitInMs: 30_000 });
    actor.stop();
  });
});
