import { fromCallback, fromPromise, type EventObject } from 'xstate';

/** A named actor that src/ must provide; running the chart without it fails loudly. */
export const needs = <TOutput, TInput = void>(name: string) =>
  fromPromise<TOutput, TInput>(async () => {
    throw new Error(`actor '${name}' not provided`);
  });

/** The same for long-lived callback actors. */
export const needsCallback = <TEvent extends EventObject, TInput = void>(name: string) =>
  fromCallback<TEvent, TInput>(() => {
    throw new Error(`actor '${name}' not provided`);
  });
