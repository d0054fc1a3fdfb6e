import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, NotFound } from '../api.js';

export const fmtTime = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleTimeString() : '–');
export const fmtDate = (ms: number | null | undefined) => (ms ? new Date(ms).toLocaleString() : '–');
export const fmtBytes = (n: number | null | undefined) =>
  n == null
    ? '–'
    : n < 1024
      ? `${n} B`
      : n < 1 << 20
        ? `${(n / 1024).toFixed(1)} KiB`
        : n < 1 << 30
          ? `${(n / (1 << 20)).toFixed(1)} MiB`
          : `${(n / (1 << 30)).toFixed(2)} GiB`;
export const fmtDuration = (ms: number | null | undefined) =>
  ms == null ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`;

export function Card({ title, children, testid }: { title: ComponentChildren; children: ComponentChildren; testid?: string }) {
  return (
    <section class="card" data-testid={testid}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** A small table of label → value pairs. */
export function Facts({ rows }: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

/**
 * GET `path` now and again whenever `version` changes (a /ws change of the actor it is about),
 * never on a timer. `missing` is true when the route answers 404.
 */
export function useFetched<T>(path: string | null, version: unknown): { data: T | null; error: string | null; missing: boolean } {
  const [state, setState] = useState<{ data: T | null; error: string | null; missing: boolean }>({ data: null, error: null, missing: false });
  useEffect(() => {
    if (!path) return;
    let current = true;
    api<T>(path).then(
      (data) => current && setState({ data, error: null, missing: false }),
      (error) => current && setState((s) => ({ data: s.data, error: String(error.message ?? error), missing: error instanceof NotFound })),
    );
    return () => void (current = false);
  }, [path, version]);
  return state;
}
