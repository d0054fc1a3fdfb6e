import { assign, enqueueActions, setup } from 'xstate';
import type { BackoffPolicy } from './shared/backoff.js';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';
import { deviceMachine, type DeviceInput, type DeviceOutput } from './device.js';

/** What the hotplug actor knows of a serial device that is present (plain data). */
export interface PresentDevice {
  id: string;
  path: string;
  /** the matched profile; null when no profile matches (known, not opened) */
  profile: string | null;
  /** where it came from: a USB device seen in sysfs, or a port fixed by config */
  source: 'usb' | 'config';
  vendorId?: string;
  productId?: string;
  serial?: string;
  product?: string;
  manufacturer?: string;
  /** why its id is not the usual one (a serial number shared with another adapter) */
  note?: string;
  /** when it was seen (ms since the epoch, from src/) */
  at: number;
}

/** Facts from the hotplug actor: sources (usb events, sysfs polling, config) already merged
 * and matched against the profiles. */
export type HotplugEvent =
  | { type: 'devices.attached'; device: PresentDevice }
  | { type: 'devices.detached'; id: string; at: number }
  | { type: 'devices.source'; source: string; problem: string | null };

export interface DeviceRecord {
  id: string;
  profile: string | null;
  path: string;
  /** gone (unplugged, or removed from config/profiles), refused (over maxDevices), crashed */
  outcome: 'gone' | 'refused' | 'crashed';
  reconnects: number;
  lastError: Failure | null;
  at: number;
}

export interface DevicesInput {
  maxDevices: number;
  retry: BackoffPolicy;
  jitterSeed: number;
  /** records of devices no longer present, kept newest last */
  maxRecords?: number;
}

export interface DevicesContext extends DevicesInput {
  /** every serial device present now, matched or not, by id */
  present: Record<string, PresentDevice>;
  /** the devices with a live `device:<id>` actor, and which spawn it is (its `spawned` count) */
  live: Record<string, number>;
  records: DeviceRecord[];
  source: string | null;
  problem: string | null;
  spawned: number;
  refused: number;
  lastError: Failure | null;
}

export const devicesVersion = '1';
const isDeviceChild = (id: string | undefined) => id?.startsWith('device:') ?? false;
const childId = (id: string) => `device:${id}`;

function remember(context: DevicesContext, record: DeviceRecord): DeviceRecord[] {
  const max = context.maxRecords ?? 100;
  return [...context.records.filter((r) => r.id !== record.id), record].slice(-max);
}

/** A device actor ended: done with its output, or crashed with an error. */
type DeviceEnded =
  | { type: `xstate.done.actor.${string}`; actorId?: string; output?: DeviceOutput }
  | { type: `xstate.error.actor.${string}`; actorId?: string; error?: unknown };
type Ended = { actorId: string; crashed: boolean; output?: DeviceOutput; error?: unknown };
const endedOf = (event: DeviceEnded): Ended =>
  'error' in event
    ? { actorId: event.actorId ?? '', crashed: true, error: event.error }
    : { actorId: event.actorId ?? '', crashed: false, output: 'output' in event ? event.output : undefined };

/** The context after one more spawn: its count, and the device live as that spawn. */
function spawnDevice(context: DevicesContext, live: Record<string, number>, id: string): Partial<DevicesContext> {
  return { spawned: context.spawned + 1, live: { ...live, [id]: context.spawned } };
}

function deviceInput(context: DevicesContext, id: string, path: string, profile: string): DeviceInput {
  return { id, path, profile, retry: context.retry, jitterSeed: context.jitterSeed + context.spawned, spawn: context.spawned };
}

/**
 * The peripherals concern. The hotplug actor reports devices present and gone; each one a
 * profile matches becomes a `device:<id>` actor, up to `maxDevices` (beyond that it is refused
 * and recorded, and gets the next slot that frees up while it is still present). A detach
 * sends `device.detach`; the child reaches `gone`, is stopped, and its outcome is kept as a
 * bounded record, not as a live actor. Which devices have a live actor is in `live`.
 */
export const devicesMachine = setup({
  types: {} as {
    context: DevicesContext;
    events: HotplugEvent | DeviceEnded;
    input: DevicesInput;
  },
  actors: {
    hotplug: needsCallback<HotplugEvent>('hotplug'),
    commands: needsCallback('commands'),
    device: deviceMachine,
  },
  guards: {
    isDeviceChild: (_, { actorId }: { actorId: string | undefined }) => isDeviceChild(actorId),
  },
  actions: {
    attach: enqueueActions(({ enqueue, context }, { device }: { device: PresentDevice }) => {
      const running = device.id in context.live;
      const before = context.present[device.id];
      enqueue.assign({ present: { ...context.present, [device.id]: device } });
      // Same device, same profile and port: nothing to do. Otherwise the old one goes first.
      if (running && before && before.profile === device.profile && before.path === device.path) return;
      const { [device.id]: _old, ...live } = context.live;
      if (running) {
        enqueue.stopChild(childId(device.id));
        enqueue.assign({ live });
      }
      if (device.profile === null) return;
      if (Object.keys(live).length >= context.maxDevices) {
        enqueue.assign({
          refused: context.refused + 1,
          records: remember(context, {
            id: device.id,
            profile: device.profile,
            path: device.path,
            outcome: 'refused',
            reconnects: 0,
            lastError: { code: 'max_devices', message: `more than ${context.maxDevices} devices` },
            at: device.at,
          }),
        });
        return;
      }
      enqueue.assign(spawnDevice(context, live, device.id));
      enqueue.spawnChild('device', { id: childId(device.id), input: deviceInput(context, device.id, device.path, device.profile) });
    }),
    detach: enqueueActions(({ enqueue, context }, { id }: { id: string }) => {
      const { [id]: _gone, ...present } = context.present;
      enqueue.assign({ present });
      if (id in context.live) enqueue.sendTo(childId(id), { type: 'device.detach' });
    }),
    finish: enqueueActions(({ enqueue, context }, ended: Ended) => {
      const id = ended.actorId.slice('device:'.length);
      const known = context.present[id];
      enqueue.assign({
        records: remember(context, {
          id,
          profile: ended.output?.profile ?? known?.profile ?? null,
          path: ended.output?.path ?? known?.path ?? '',
          outcome: ended.crashed ? 'crashed' : 'gone',
          reconnects: ended.output?.reconnects ?? 0,
          lastError: ended.crashed ? toFailure(ended.error, 'crashed') : (ended.output?.lastError ?? null),
          at: known?.at ?? 0,
        }),
      });
      // A new device:<id> may have replaced the one that ended (attach stopped the old one):
      // only the live one, the spawn the output names, is stopped here.
      const stale = ended.output?.spawn !== undefined && ended.output.spawn !== context.live[id];
      if (!(id in context.live) || stale) return;
      const { [id]: _ended, ...live } = context.live;
      enqueue.stopChild(ended.actorId);
      enqueue.assign({ live });
      // The freed slot goes to the device refused longest ago that is still present.
      const waiting = Object.values(context.present).find((d) => d.profile !== null && d.id !== id && !(d.id in live));
      if (waiting && Object.keys(live).length < context.maxDevices) {
        enqueue.assign(spawnDevice(context, live, waiting.id));
        enqueue.spawnChild('device', { id: childId(waiting.id), input: deviceInput(context, waiting.id, waiting.path, waiting.profile!) });
      }
    }),
  },
}).createMachine({
  id: 'devices',
  version: devicesVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, present: {}, live: {}, records: [], source: null, problem: null, spawned: 0, refused: 0, lastError: null }),
  initial: 'watching',
  states: {
    watching: {
      tags: ['healthy'],
      invoke: [
        { src: 'hotplug', id: 'hotplug', onError: { target: 'broken', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) } },
        // commands to devices over MQTT (.../<id>/command); they reach each device as events
        { src: 'commands', id: 'commands', onError: { target: 'broken', actions: assign({ lastError: ({ event }) => toFailure(event.error) }) } },
      ],
      on: {
        'devices.attached': { actions: { type: 'attach', params: ({ event }) => event } },
        'devices.detached': { actions: { type: 'detach', params: ({ event }) => event } },
        'devices.source': { actions: assign({ source: ({ event }) => event.source, problem: ({ event }) => event.problem }) },
        'xstate.done.actor.*': {
          guard: { type: 'isDeviceChild', params: ({ event }) => ({ actorId: event.actorId }) },
          actions: { type: 'finish', params: ({ event }) => endedOf(event) },
        },
        'xstate.error.actor.*': {
          guard: { type: 'isDeviceChild', params: ({ event }) => ({ actorId: event.actorId }) },
          actions: { type: 'finish', params: ({ event }) => endedOf(event) },
        },
      },
    },
    // The supervisor restarts the concern; devices found again are reopened.
    broken: { type: 'final' },
  },
});
