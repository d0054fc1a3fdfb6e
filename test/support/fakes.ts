import { fromCallback, fromPromise, type AnyActorLogic, type AnyEventObject } from 'xstate';

/** A callback actor a test can drive: it exposes each live instance's `sendBack`,
 * records what the chart sends it, and counts starts and cleanups. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a fake stands in for actors of any event type
export function fakeCallback<TInput = any>() {
  const live: Array<{ input: TInput; sendBack: (event: AnyEventObject) => void; received: AnyEventObject[] }> = [];
  const stats = { started: 0, stopped: 0 };
  const logic = fromCallback<any, TInput>(({ input, sendBack, receive }) => {
    const entry = { input, sendBack, received: [] as AnyEventObject[] };
    stats.started++;
    live.push(entry);
    receive((event) => entry.received.push(event));
    return () => {
      stats.stopped++;
      live.splice(live.indexOf(entry), 1);
    };
  });
  return {
    logic,
    stats,
    get current() {
      const entry = live.at(-1);
      if (!entry) throw new Error('no live instance of the fake actor');
      return entry;
    },
    get liveCount() {
      return live.length;
    },
  };
}

/** A promise actor whose every run waits for the test to resolve or reject it. */
export function fakePromise<TOutput = void, TInput = any>() {
  const pending: Array<{ input: TInput; resolve: (v: TOutput) => void; reject: (e: unknown) => void }> = [];
  const logic = fromPromise<TOutput, TInput>(({ input }) => new Promise<TOutput>((resolve, reject) => void pending.push({ input, resolve, reject })));
  return {
    logic,
    get calls() {
      return pending.length;
    },
    resolve(value: TOutput) {
      const next = pending.shift();
      if (!next) throw new Error('no pending call');
      next.resolve(value);
    },
    reject(error: unknown) {
      const next = pending.shift();
      if (!next) throw new Error('no pending call');
      next.reject(error);
    },
  };
}

/**
 * A stand-in where the supervisor expects a concern's chart: it only invokes, stops and
 * watches its concerns, so supervisor tests give it plain callbacks and small machines.
 */
export const standIn = (logic: AnyActorLogic): never => logic as never;
