import { assign, enqueueActions, setup } from 'xstate';
import {
  alertId,
  alertMachine,
  type AlertChanged,
  type AlertEvent,
  type AlertInput,
  type AlertLevel,
  type AlertMemory,
  type AlertNotice,
  type AlertRule,
} from './alert.js';
import { needs, needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';

/** One sample of one device, as the sampler or the collector hands it over. */
export interface AlertSample {
  device: string;
  /** sample time, ms since the epoch */
  ts: number;
  values: Record<string, number>;
}

export interface RateLimit {
  /** notices per rule per window at most */
  max: number;
  windowMs: number;
}

export interface AlertsInput {
  rules: AlertRule[];
  thingName: string;
  /** live rule × device actors at most; more are refused, counted and remembered */
  maxAlerts?: number;
  rateLimit?: RateLimit;
  /** no sample for this long marks an alert stale */
  staleAfterMs?: number;
}

/** A persisted alert state with the last notice kind that went out for it. */
export interface AlertRecord extends AlertMemory {
  notified: AlertNotice['kind'] | null;
}

/** What the notifier actor is told, in order: states to persist and notices to send. */
export type NotifierCommand =
  /** `record` null: the alert ended (ok and stale): forget it */
  | { type: 'alerts.state'; id: string; memory: AlertMemory | null }
  /** one notice for every channel; the notifier also remembers it as the alert's last one sent */
  | { type: 'alerts.notice'; notice: AlertNotice };

/** What the notifier reports of one channel (Slack, MQTT), for the state API. */
export interface DeliveryStatus {
  channel: string;
  pending: number;
  delivered: number;
  dropped: number;
  rejected: number;
  failing: Failure | null;
}

export type NotifierEvent = { type: 'alerts.delivery'; status: DeliveryStatus };

export type AlertsEvent =
  | { type: 'alerts.sample'; sample: AlertSample }
  | NotifierEvent
  | AlertChanged
  | { type: `xstate.done.actor.${string}`; actorId?: string; output?: AlertMemory }
  | { type: `xstate.error.actor.${string}`; actorId?: string; error?: unknown };

export interface RuleWindow {
  start: number;
  sent: number;
  /** notices held back since the last one that went out */
  suppressed: number;
}

export interface AlertsContext {
  rules: AlertRule[];
  thingName: string;
  maxAlerts: number;
  rateLimit: RateLimit;
  staleAfterMs: number;
  /** the live children, by id, with their level */
  alerts: Record<string, { rule: string; device: string; level: AlertLevel }>;
  /** states a previous run left, used when their alert is spawned */
  restored: Record<string, AlertRecord>;
  /** the last notice kind sent per alert (what the people told believe) */
  notified: Record<string, AlertNotice['kind']>;
  windows: Record<string, RuleWindow>;
  /** the latest notice held back per alert, sent when its rule's window reopens if it still differs */
  held: Record<string, AlertNotice>;
  /** samples that came while restoring, taken after it */
  early: AlertSample[];
  counters: { samples: number; notices: number; suppressed: number; refused: number; ignored: number };
  /** alerts refused by maxAlerts, newest last (bounded) */
  refusedIds: string[];
  delivery: Record<string, DeliveryStatus>;
  lastError: Failure | null;
}

export const alertsVersion = '1';
const MAX_EARLY = 256;
const MAX_REFUSED_IDS = 100;
/** device ids become part of actor ids and topics: bounded and plain */
const DEVICE_ID = /^[A-Za-z0-9:_.-]{1,128}$/;
const isAlertChild = (id: string | undefined) => id?.startsWith('alert:') ?? false;

export function selects(rule: AlertRule, device: string, thingName: string): boolean {
  const devices = rule.devices ?? 'self';
  if (devices === 'all') return true;
  if (devices === 'self') return device === thingName;
  return devices.includes(device);
}

/** The two effects the helpers below ask for; each action turns them into enqueued actions. */
interface Enqueue {
  sendTo(to: string, event: AlertEvent | NotifierCommand): void;
  spawnChild(src: 'alert', options: { id: string; input: AlertInput }): void;
}
/** The context fields an action changes, threaded through the helpers and assigned once. */
type Work = Pick<AlertsContext, 'alerts' | 'refusedIds' | 'counters' | 'windows' | 'held' | 'notified'>;
const workOf = ({ alerts, refusedIds, counters, windows, held, notified }: AlertsContext): Work => ({ alerts, refusedIds, counters, windows, held, notified });
const count = (work: Work, key: keyof Work['counters']) => (work.counters = { ...work.counters, [key]: work.counters[key] + 1 });
const toNotifier = (enqueue: Enqueue, command: NotifierCommand) => enqueue.sendTo('notifier', command);

/** Spawns what a sample needs (within maxAlerts) and hands each selected alert its value. */
function takeSample(context: AlertsContext, work: Work, sample: AlertSample, enqueue: Enqueue): void {
  if (!DEVICE_ID.test(sample.device) || !Number.isFinite(sample.ts) || typeof sample.values !== 'object' || sample.values === null) {
    count(work, 'ignored');
    return;
  }
  count(work, 'samples');
  for (const rule of context.rules) {
    const value = sample.values[rule.metric];
    if (typeof value !== 'number' || !selects(rule, sample.device, context.thingName)) continue;
    const id = alertId(rule.id, sample.device);
    if (!(id in work.alerts) && !spawnAlert(context, work, rule, sample.device, enqueue)) continue;
    enqueue.sendTo(id, { type: 'alert.sample', ts: sample.ts, value });
  }
}

function spawnAlert(context: AlertsContext, work: Work, rule: AlertRule, device: string, enqueue: Enqueue): boolean {
  const id = alertId(rule.id, device);
  if (Object.keys(work.alerts).length >= context.maxAlerts) {
    if (!work.refusedIds.includes(id)) {
      work.refusedIds = [...work.refusedIds, id].slice(-MAX_REFUSED_IDS);
      count(work, 'refused');
    }
    return false;
  }
  const restored = context.restored[id];
  enqueue.spawnChild('alert', { id, input: { rule, device, staleAfterMs: context.staleAfterMs, restored } });
  work.alerts = { ...work.alerts, [id]: { rule: rule.id, device, level: restored?.level ?? 'ok' } };
  return true;
}

/**
 * The rate limit, in sample time: a notice goes out if its rule's window has room (a window
 * opens at the first notice after the previous one ended), else it is held back. The one
 * that goes out carries the count held back since the last one.
 */
function offer(context: AlertsContext, work: Work, notice: AlertNotice, enqueue: Enqueue): void {
  const { max, windowMs } = context.rateLimit;
  let window = work.windows[notice.rule] ?? { start: notice.at, sent: 0, suppressed: 0 };
  if (notice.at >= window.start + windowMs) window = { start: notice.at, sent: 0, suppressed: window.suppressed };
  if (window.sent >= max) {
    work.windows = { ...work.windows, [notice.rule]: { ...window, suppressed: window.suppressed + 1 } };
    work.held = { ...work.held, [notice.alert]: notice };
    count(work, 'suppressed');
    return;
  }
  work.windows = { ...work.windows, [notice.rule]: { ...window, sent: window.sent + 1, suppressed: 0 } };
  const { [notice.alert]: _sent, ...held } = work.held;
  work.held = held;
  work.notified = { ...work.notified, [notice.alert]: notice.kind };
  count(work, 'notices');
  toNotifier(enqueue, { type: 'alerts.notice', notice: { ...notice, suppressed: window.suppressed } });
}

/** Held notices whose rule's window has passed by `now`: the latest per alert goes out if it differs from the last one sent. */
function releaseHeld(context: AlertsContext, work: Work, now: number, enqueue: Enqueue): void {
  for (const [id, notice] of Object.entries(work.held)) {
    const window = work.windows[notice.rule];
    if (window && now < window.start + context.rateLimit.windowMs) continue;
    if (work.notified[id] === notice.kind) {
      const { [id]: _same, ...held } = work.held;
      work.held = held;
    } else offer(context, work, { ...notice, at: Math.max(notice.at, now) }, enqueue);
    // an alert that ended keeps its last-sent kind only while a notice of it is held
    if (!(id in work.alerts) && !(id in work.held)) {
      const { [id]: _gone, ...notified } = work.notified;
      work.notified = notified;
    }
  }
}

/**
 * The alerts manager: one `alert:<rule>:<device>` child per rule × device a rule's `devices`
 * selects, spawned at the first sample carrying the rule's metric, at most `maxAlerts` (more
 * are refused, counted and remembered in `refusedIds`). It restores the states a previous
 * run left first (samples meanwhile wait, bounded), hands every level change to the notifier
 * to persist, and every notice to it to send, under a rate limit per rule: at most `max` per
 * window of sample time; one over is held back (counted), and when the window has passed
 * the latest held one per alert goes out if it differs from what was last sent, carrying the
 * count of those suppressed. So a flapping metric costs a few notices, and the last word
 * sent is always the alert's real state.
 */
export const alertsMachine = setup({
  types: {} as { context: AlertsContext; events: AlertsEvent; input: AlertsInput },
  actors: {
    restoreAlerts: needs<Record<string, AlertRecord>, void>('restoreAlerts'),
    notifier: needsCallback<NotifierCommand>('notifier'),
    // pure: nothing for src/ to provide
    alert: alertMachine,
  },
  guards: {
    isAlertChild: ({ event }) => 'actorId' in event && isAlertChild(event.actorId),
  },
  actions: {
    hold: assign({
      early: ({ context, event }) => (event.type === 'alerts.sample' ? [...context.early, event.sample].slice(-MAX_EARLY) : context.early),
      counters: ({ context }) => (context.early.length >= MAX_EARLY ? { ...context.counters, ignored: context.counters.ignored + 1 } : context.counters),
    }),
    sample: enqueueActions(({ context, event, enqueue: actions }) => {
      if (event.type !== 'alerts.sample') return;
      const enqueue: Enqueue = actions;
      const work = workOf(context);
      takeSample(context, work, event.sample, enqueue);
      if (Number.isFinite(event.sample.ts)) releaseHeld(context, work, event.sample.ts, enqueue);
      actions.assign(work);
    }),
    // After restoring: alerts that were not ok come back at once (a firing one must stay
    // visible and must not fire again), then the samples that waited are taken.
    resume: enqueueActions(({ context, enqueue: actions }) => {
      const enqueue: Enqueue = actions;
      const work = workOf(context);
      for (const [id, record] of Object.entries(context.restored)) {
        const rule = context.rules.find((r) => r.id === record.rule);
        if (!rule || record.level === 'ok' || id !== alertId(rule.id, record.device) || !selects(rule, record.device, context.thingName)) continue;
        if (record.notified) work.notified = { ...work.notified, [id]: record.notified };
        spawnAlert(context, work, rule, record.device, enqueue);
      }
      for (const sample of context.early) takeSample(context, work, sample, enqueue);
      actions.assign({ ...work, early: [] });
    }),
    changed: enqueueActions(({ context, event, enqueue: actions }) => {
      if (event.type !== 'alert.changed' || !context.alerts[event.id]) return;
      const enqueue: Enqueue = actions;
      const work = workOf(context);
      work.alerts = { ...work.alerts, [event.id]: { ...work.alerts[event.id], level: event.memory.level } };
      toNotifier(enqueue, { type: 'alerts.state', id: event.id, memory: event.memory });
      if (event.notice) offer(context, work, event.notice, enqueue);
      actions.assign(work);
    }),
    finish: enqueueActions(({ context, event, enqueue }) => {
      if (!('actorId' in event) || !event.actorId) return;
      const id = event.actorId;
      const { [id]: _alert, ...alerts } = context.alerts;
      const { [id]: _restored, ...restored } = context.restored;
      const notified = { ...context.notified };
      if (!(id in context.held)) delete notified[id];
      const crashed = event.type.startsWith('xstate.error.');
      enqueue.stopChild(id);
      enqueue.assign({ alerts, notified, restored, lastError: crashed && 'error' in event ? toFailure(event.error, 'crashed') : context.lastError });
      enqueue.sendTo('notifier', { type: 'alerts.state', id, memory: null } satisfies NotifierCommand);
    }),
    delivery: assign({
      delivery: ({ context, event }) => (event.type === 'alerts.delivery' ? { ...context.delivery, [event.status.channel]: event.status } : context.delivery),
    }),
  },
}).createMachine({
  id: 'alerts',
  version: alertsVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({
    rules: input.rules,
    thingName: input.thingName,
    maxAlerts: input.maxAlerts ?? 1000,
    rateLimit: input.rateLimit ?? { max: 10, windowMs: 15 * 60_000 },
    staleAfterMs: input.staleAfterMs ?? 60_000,
    alerts: {},
    restored: {},
    notified: {},
    windows: {},
    held: {},
    early: [],
    counters: { samples: 0, notices: 0, suppressed: 0, refused: 0, ignored: 0 },
    refusedIds: [],
    delivery: {},
    lastError: null,
  }),
  invoke: { src: 'notifier', id: 'notifier', onError: { target: '.broken', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) } },
  on: { 'alerts.delivery': { actions: 'delivery' } },
  initial: 'restoring',
  states: {
    restoring: {
      on: { 'alerts.sample': { actions: 'hold' } },
      invoke: {
        src: 'restoreAlerts',
        onDone: { target: 'watching', actions: [assign({ restored: ({ event }) => event.output }), 'resume'] },
        onError: { target: 'watching', actions: [assign({ lastError: ({ event }) => toFailure(event.error, 'restore') }), 'resume'] },
      },
    },
    watching: {
      tags: ['healthy'],
      on: {
        'alerts.sample': { actions: 'sample' },
        'alert.changed': { actions: 'changed' },
        'xstate.done.actor.*': { guard: 'isAlertChild', actions: 'finish' },
        'xstate.error.actor.*': { guard: 'isAlertChild', actions: 'finish' },
      },
    },
    // The notifier broke (a bug): the parent restarts the concern; states and notices are on disk.
    broken: { type: 'final' },
  },
});
