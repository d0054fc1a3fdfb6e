import { assign, setup } from 'xstate';
import { backoffMs, type BackoffPolicy } from './shared/backoff.js';
import { needs } from './shared/placeholders.js';
import { toFailure, type ConcernOutput, type Failure } from './shared/types.js';
import { firmwareMachine, type FirmwareInput } from './firmware.js';
import { devicesMachine, type DevicesInput } from './devices.js';
import { jobsMachine, type JobsInput } from './jobs.js';
import { linkMachine, type LinkInput } from './link.js';
import { listenerMachine, type ListenerInput } from './listener.js';
import { monitorMachine, type MonitorInput } from './monitor.js';
import { outboxMachine } from './outbox.js';

/** The static concerns, in start order: the embedded broker listens before the link dials it. */
export const concerns = ['broker', 'link', 'outbox', 'jobs', 'devices', 'firmware', 'monitor', 'http'] as const;
export type Concern = (typeof concerns)[number];

export interface ConcernInputs {
  broker: ListenerInput;
  link: LinkInput;
  outbox: undefined;
  jobs: JobsInput;
  firmware: FirmwareInput;
  devices: DevicesInput;
  monitor: MonitorInput;
  http: ListenerInput;
}

export interface RestartPolicy {
  backoff: BackoffPolicy;
  /** restarts allowed in a row before a concern is given up on */
  maxRestarts: number;
  /** time up after which the restart count resets, in ms */
  stableMs: number;
  jitterSeed: number;
  /** after a concern gave up, the agent stops (exit 1, so systemd starts it afresh) this much
   * later; meanwhile /health shows the give-up. Absent: it keeps running without the concern. */
  exitAfterGiveUpMs?: number;
}

export interface SupervisorInput {
  enabled: Record<Concern, boolean>;
  inputs: ConcernInputs;
  restart: RestartPolicy;
  drainTimeoutMs: number;
}

export interface SupervisorContext {
  enabled: Record<Concern, boolean>;
  restart: RestartPolicy;
  drainTimeoutMs: number;
  restarts: Record<Concern, number>;
  retryInMs: Record<Concern, number>;
  lastCrash: Record<Concern, Failure | null>;
  /** why the agent stops, when it stops because something could not start */
  reason: string | null;
  /** the children's inputs; private (views drop keys that start with "_") */
  _inputs: ConcernInputs;
}

export type SupervisorEvent = { type: 'supervisor.stop' };
export interface SupervisorOutput {
  reason: string | null;
}

export const supervisorVersion = '1';

type Params = { name: Concern };
const perConcern = <T>(value: (name: Concern) => T) => Object.fromEntries(concerns.map((name) => [name, value(name)])) as Record<Concern, T>;

/** The crash an onError or an unexpected onDone stands for, as plain data. */
function crashOf(event: { type: string; error?: unknown; output?: unknown }): Failure {
  if ('error' in event) return toFailure(event.error, 'crashed');
  const reported = (event.output as ConcernOutput | undefined)?.error;
  if (reported) return reported;
  return { code: 'ended', message: 'the concern stopped on its own' };
}

type Ctx = { context: SupervisorContext };
/** Each concern's actor and the input it gets, written out so that each pair is type-checked. */
const sourceOf = {
  broker: { src: 'broker', input: ({ context }: Ctx) => context._inputs.broker },
  link: { src: 'link', input: ({ context }: Ctx) => context._inputs.link },
  outbox: { src: 'outbox', input: () => undefined },
  jobs: { src: 'jobs', input: ({ context }: Ctx) => context._inputs.jobs },
  firmware: { src: 'firmware', input: ({ context }: Ctx) => context._inputs.firmware },
  devices: { src: 'devices', input: ({ context }: Ctx) => context._inputs.devices },
  monitor: { src: 'monitor', input: ({ context }: Ctx) => context._inputs.monitor },
  http: { src: 'http', input: ({ context }: Ctx) => context._inputs.http },
} as const;

/** One parallel region per concern: up ⇄ restarting with capped backoff, gaveUp at the limit. */
function concernRegion(name: Concern) {
  const restartOrGiveUp = [
    { guard: { type: 'mayRestart', params: { name } }, target: 'restarting', actions: { type: 'recordCrash', params: { name } } },
    { target: 'gaveUp', actions: { type: 'recordCrash', params: { name } } },
  ] as const;
  return {
    initial: 'checking',
    states: {
      checking: {
        always: [{ guard: { type: 'isEnabled', params: { name } }, target: 'up' }, { target: 'disabled' }],
      },
      disabled: {},
      up: {
        invoke: {
          ...sourceOf[name],
          id: name,
          systemId: name,
          onDone: [{ guard: 'isFatal', target: '#supervisor.stopping', actions: 'recordFatal' }, ...restartOrGiveUp],
          onError: [...restartOrGiveUp],
        },
        after: { stable: { actions: { type: 'resetRestarts', params: { name } } } },
      },
      restarting: { tags: ['degraded'], after: { [`${name}Backoff`]: 'up' } },
      gaveUp: {
        tags: ['degraded'],
        after: { exitAfterGiveUp: { guard: 'exitsAfterGiveUp', target: '#supervisor.stopping', actions: { type: 'recordGiveUp', params: { name } } } },
      },
    },
  } as const;
}

/**
 * The root of the actor tree. Each static concern runs in its own region of `running`; a
 * crashed concern is restarted by re-entering `up` after a backoff, and the tree carries the
 * `degraded` tag meanwhile. A concern that reports a fatal output (it can never work, as a
 * port in use) stops the agent with that reason; so does one that gave up after its
 * restarts, `exitAfterGiveUpMs` later (the process exits 1 and systemd starts it afresh).
 */
export const supervisorMachine = setup({
  types: {} as {
    context: SupervisorContext;
    events: SupervisorEvent;
    input: SupervisorInput;
    output: SupervisorOutput;
  },
  actors: {
    prepare: needs<void>('prepare'),
    drain: needs<void>('drain'),
    broker: listenerMachine,
    link: linkMachine,
    outbox: outboxMachine,
    jobs: jobsMachine,
    firmware: firmwareMachine,
    devices: devicesMachine,
    monitor: monitorMachine,
    http: listenerMachine,
  },
  delays: {
    stable: ({ context }) => context.restart.stableMs,
    exitAfterGiveUp: ({ context }) => context.restart.exitAfterGiveUpMs ?? 0,
    drainTimeout: ({ context }) => context.drainTimeoutMs,
    ...(Object.fromEntries(concerns.map((name) => [`${name}Backoff`, ({ context }: { context: SupervisorContext }) => context.retryInMs[name]])) as Record<
      `${Concern}Backoff`,
      ({ context }: { context: SupervisorContext }) => number
    >),
  },
  guards: {
    isEnabled: ({ context }, { name }: Params) => context.enabled[name],
    mayRestart: ({ context }, { name }: Params) => context.restarts[name] < context.restart.maxRestarts,
    isFatal: ({ event }) => Boolean((event as { output?: ConcernOutput }).output?.fatal),
    exitsAfterGiveUp: ({ context }) => context.restart.exitAfterGiveUpMs !== undefined,
  },
  actions: {
    recordCrash: assign(({ context, event }, { name }: Params) => {
      const count = context.restarts[name] + 1;
      return {
        restarts: { ...context.restarts, [name]: count },
        retryInMs: { ...context.retryInMs, [name]: backoffMs(context.restart.backoff, count, context.restart.jitterSeed) },
        lastCrash: { ...context.lastCrash, [name]: crashOf(event as { type: string }) },
      };
    }),
    resetRestarts: assign(({ context }, { name }: Params) => ({ restarts: { ...context.restarts, [name]: 0 } })),
    recordFatal: assign({ reason: ({ event }) => (event as { output?: ConcernOutput }).output?.fatal ?? null }),
    recordGiveUp: assign({
      reason: ({ context }, { name }: Params) =>
        `${name} gave up after ${context.restarts[name]} crashes: ${context.lastCrash[name]?.message ?? 'unknown error'}`,
    }),
  },
}).createMachine({
  id: 'supervisor',
  version: supervisorVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    enabled: input.enabled,
    restart: input.restart,
    drainTimeoutMs: input.drainTimeoutMs,
    restarts: perConcern(() => 0),
    retryInMs: perConcern(() => 0),
    lastCrash: perConcern(() => null),
    reason: null,
    _inputs: input.inputs,
  }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'prepare',
        onDone: 'running',
        onError: { target: 'stopping', actions: assign({ reason: ({ event }) => `start-up: ${toFailure(event.error).message}` }) },
      },
      on: { 'supervisor.stop': 'stopping' },
    },
    running: {
      type: 'parallel',
      states: perConcern(concernRegion),
      on: { 'supervisor.stop': 'stopping' },
    },
    stopping: {
      invoke: { src: 'drain', onDone: 'stopped', onError: 'stopped' },
      after: { drainTimeout: 'stopped' },
    },
    stopped: { type: 'final' },
  },
  output: ({ context }) => ({ reason: context.reason }),
});
