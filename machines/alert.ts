import { assign, raise, sendParent, setup } from 'xstate';

export type AlertOp = '>' | '>=' | '<' | '<=';
export type AlertSeverity = 'info' | 'warning' | 'critical';

/** One `monitor.alerts[]` rule (the config contract; src/config/alerts.ts validates it). */
export interface AlertRule {
  id: string;
  /** a flattened metric key, e.g. `cpu-percent` */
  metric: string;
  op: AlertOp;
  threshold: number;
  /** where a firing alert resolves (hysteresis); defaults to `threshold` */
  clear?: number;
  /** how long the breach must hold, in sample time, before it fires; default 0 */
  forSeconds?: number;
  severity?: AlertSeverity;
  /** "self" (this agent's thingName, the default), "all", or a list of device ids */
  devices?: 'self' | 'all' | string[];
}

export type AlertLevel = 'ok' | 'pending' | 'firing' | 'resolved';

/** What is kept of one rule × device across restarts (plain data, in alerts.json). */
export interface AlertMemory {
  rule: string;
  device: string;
  level: AlertLevel;
  /** sample time (ms) of the first breaching sample of the current episode; null when ok */
  since: number | null;
  /** sample time it went firing; null when it has not in this episode */
  firedAt: number | null;
  /** the last value taken and its sample time */
  value: number | null;
  lastTs: number | null;
  /** no sample for staleAfterMs: the level is kept (a firing alert stays firing) */
  stale: boolean;
}

/** One notification: exactly one per transition to firing or to resolved. */
export interface AlertNotice {
  kind: 'firing' | 'resolved';
  /** the child id, `alert:<rule>:<device>` */
  alert: string;
  rule: string;
  device: string;
  metric: string;
  op: AlertOp;
  threshold: number;
  clear: number;
  severity: AlertSeverity;
  /** the value that made the transition, and its sample time (ms since the epoch) */
  value: number;
  at: number;
  /** first breaching sample of the episode (ms since the epoch) */
  since: number;
  /** notices of this rule the rate limit held back before this one (set by the manager) */
  suppressed: number;
}

export type AlertEvent = { type: 'alert.sample'; ts: number; value: number };

/** What a child tells its manager at each level change (a notice when it fired or resolved). */
export interface AlertChanged {
  type: 'alert.changed';
  id: string;
  memory: AlertMemory;
  notice: AlertNotice | null;
}

export interface AlertInput {
  rule: AlertRule;
  device: string;
  /** no sample for this long marks the alert stale (and ends it when it is not firing) */
  staleAfterMs: number;
  /** the state a previous run left (a restart must not fire again nor forget a firing alert) */
  restored?: AlertMemory;
}

export interface AlertContext {
  id: string;
  rule: AlertRule;
  device: string;
  staleAfterMs: number;
  restoredLevel: AlertLevel;
  since: number | null;
  firedAt: number | null;
  value: number | null;
  lastTs: number | null;
  stale: boolean;
  /** samples taken, and samples ignored (not newer than the last one, or not a finite number) */
  samples: number;
  ignored: number;
}

export const alertVersion = '1';
export const alertId = (rule: string, device: string) => `alert:${rule}:${device}`;
export const clearOf = (rule: AlertRule) => rule.clear ?? rule.threshold;

/** The breach condition: `value op threshold`. */
export function breaches(rule: AlertRule, value: number): boolean {
  return compare(rule.op, value, rule.threshold);
}

/** A firing alert resolves when `value op clear` no longer holds (for ">" that is value <= clear). */
export function recovers(rule: AlertRule, value: number): boolean {
  return !compare(rule.op, value, clearOf(rule));
}

function compare(op: AlertOp, a: number, b: number): boolean {
  if (op === '>') return a > b;
  if (op === '>=') return a >= b;
  if (op === '<') return a < b;
  return a <= b;
}

function memoryOf(context: AlertContext, level: AlertLevel): AlertMemory {
  const { rule, device, since, firedAt, value, lastTs, stale } = context;
  return { rule: rule.id, device, level, since, firedAt, value, lastTs, stale };
}

function noticeOf(context: AlertContext, kind: AlertNotice['kind']): AlertNotice {
  const { rule } = context;
  return {
    kind,
    alert: context.id,
    rule: rule.id,
    device: context.device,
    metric: rule.metric,
    op: rule.op,
    threshold: rule.threshold,
    clear: clearOf(rule),
    severity: rule.severity ?? 'warning',
    value: context.value ?? Number.NaN,
    at: context.lastTs ?? 0,
    since: context.since ?? context.lastTs ?? 0,
    suppressed: 0,
  };
}

type Value = { type: 'alert.value'; ts: number; value: number };
type Internal = AlertEvent | Value | { type: 'alert.stale' };
const valueEvent = (event: Internal) => (event.type === 'alert.value' ? event : undefined);
const report = (level: AlertLevel, notice: AlertNotice['kind'] | null = null) => ({ type: 'report', params: { level, notice } }) as const;

/**
 * One rule × device: ok → pending → firing → resolved (→ ok, or → pending again).
 *
 * Time is sample time: a breach that began with the sample at t0 fires at the first sample
 * t ≥ t0 + forSeconds, provided every sample in between breached too (one that does not
 * sends it back to ok). A firing alert resolves at the first sample that no longer satisfies
 * `value op clear`; between clear and threshold it stays as it is (hysteresis). A resolved
 * one goes to ok at the next sample that does not breach, or to pending at one that does.
 *
 * Missing data: no usable sample for staleAfterMs (the device stopped reporting, or stopped
 * reporting this metric) marks it stale. A firing alert stays firing and stale, so a box that
 * dies hot is not reported resolved; any other level ends the actor (`retired`), which frees
 * its slot: a pending breach that was not seen to hold is not a breach. A sample that is not
 * newer than the last one, or not a finite number, is ignored and counted.
 *
 * Every level change is reported to the parent (`alert.changed`, with the state to persist);
 * a transition into firing or resolved carries exactly one notice. A restored state is
 * entered without a notice.
 */
export const alertMachine = setup({
  types: {} as { context: AlertContext; events: Internal; input: AlertInput; output: AlertMemory },
  guards: {
    restoredAs: ({ context }, params: { level: AlertLevel }) => context.restoredLevel === params.level,
    usable: ({ context, event }) =>
      event.type === 'alert.sample' && Number.isFinite(event.value) && Number.isFinite(event.ts) && (context.lastTs === null || event.ts > context.lastTs),
    breach: ({ context, event }) => {
      const v = valueEvent(event);
      return v !== undefined && breaches(context.rule, v.value);
    },
    recovered: ({ context, event }) => {
      const v = valueEvent(event);
      return v !== undefined && recovers(context.rule, v.value);
    },
    heldLongEnough: ({ context }) =>
      context.since !== null && context.lastTs !== null && context.lastTs - context.since >= (context.rule.forSeconds ?? 0) * 1000,
  },
  actions: {
    take: assign(({ context, event }) => {
      const v = valueEvent(event);
      return v ? { value: v.value, lastTs: v.ts, samples: context.samples + 1 } : {};
    }),
    beginBreach: assign({ since: ({ context }) => context.lastTs, firedAt: null }),
    fire: assign({ firedAt: ({ context }) => context.lastTs }),
    endEpisode: assign({ since: null, firedAt: null }),
    report: sendParent(
      ({ context }, params: { level: AlertLevel; notice: AlertNotice['kind'] | null }): AlertChanged => ({
        type: 'alert.changed',
        id: context.id,
        memory: memoryOf(context, params.level),
        notice: params.notice ? noticeOf(context, params.notice) : null,
      }),
    ),
  },
  delays: { staleAfter: ({ context }) => context.staleAfterMs },
}).createMachine({
  id: 'alert',
  version: alertVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => {
    const r = input.restored;
    return {
      id: alertId(input.rule.id, input.device),
      rule: input.rule,
      device: input.device,
      staleAfterMs: input.staleAfterMs,
      restoredLevel: r?.level ?? 'ok',
      since: r?.since ?? null,
      firedAt: r?.firedAt ?? null,
      value: r?.value ?? null,
      lastTs: r?.lastTs ?? null,
      stale: false,
      samples: 0,
      ignored: 0,
    };
  },
  initial: 'live',
  states: {
    live: {
      type: 'parallel',
      // Checked once here, so the regions only see samples they may take.
      on: {
        'alert.sample': [
          { guard: 'usable', actions: raise(({ event }) => ({ type: 'alert.value' as const, ts: event.ts, value: event.value })) },
          { actions: assign({ ignored: ({ context }) => context.ignored + 1 }) },
        ],
      },
      states: {
        level: {
          initial: 'restoring',
          states: {
            restoring: {
              always: [
                { guard: { type: 'restoredAs', params: { level: 'firing' } }, target: 'firing' },
                { guard: { type: 'restoredAs', params: { level: 'resolved' } }, target: 'resolved' },
                { guard: { type: 'restoredAs', params: { level: 'pending' } }, target: 'pending' },
                { target: 'ok', actions: 'endEpisode' },
              ],
            },
            ok: {
              on: {
                'alert.value': [{ guard: 'breach', target: 'pending', actions: ['take', 'beginBreach', report('pending')] }, { actions: 'take' }],
                'alert.stale': '#alert.retired',
              },
            },
            pending: {
              always: { guard: 'heldLongEnough', target: 'firing', actions: ['fire', report('firing', 'firing')] },
              on: {
                'alert.value': [
                  { guard: 'breach', actions: 'take' },
                  { target: 'ok', actions: ['take', 'endEpisode', report('ok')] },
                ],
                'alert.stale': { target: '#alert.retired', actions: ['endEpisode', report('ok')] },
              },
            },
            firing: {
              on: {
                'alert.value': [{ guard: 'recovered', target: 'resolved', actions: ['take', report('resolved', 'resolved')] }, { actions: 'take' }],
                // stays firing: the new stale mark is only reported (and persisted)
                'alert.stale': { actions: report('firing') },
              },
            },
            resolved: {
              on: {
                'alert.value': [
                  { guard: 'breach', target: 'pending', actions: ['take', 'beginBreach', report('pending')] },
                  { target: 'ok', actions: ['take', 'endEpisode', report('ok')] },
                ],
                'alert.stale': { target: '#alert.retired', actions: ['endEpisode', report('ok')] },
              },
            },
          },
        },
        data: {
          initial: 'fresh',
          states: {
            fresh: { after: { staleAfter: 'stale' }, on: { 'alert.value': { target: 'fresh', reenter: true } } },
            stale: {
              entry: [assign({ stale: true }), raise({ type: 'alert.stale' })],
              exit: assign({ stale: false }),
              on: { 'alert.value': 'fresh' },
            },
          },
        },
      },
    },
    retired: { type: 'final' },
  },
  output: ({ context }) => memoryOf(context, 'ok'),
});

/** The level of an alert snapshot value ({ live: { level: 'firing', data: 'fresh' } } → 'firing'). */
export function alertLevelOf(value: unknown): AlertLevel {
  const live = value && typeof value === 'object' && 'live' in value ? (value as { live: { level?: unknown } }).live : undefined;
  const level = live?.level;
  return level === 'pending' || level === 'firing' || level === 'resolved' ? level : 'ok';
}
