import { assign, enqueueActions, setup, type AnyActorLogic } from 'xstate';
import type { BackoffPolicy } from './shared/backoff.js';
import { needsCallback } from './shared/placeholders.js';
import { toFailure, type Failure } from './shared/types.js';
import type { DeviceOutput } from './device.js';

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

export type RefusedParams = { id: string; path: string; reason: string } | null;

/** The refusal `attach` has just recorded for this device, if it refused it. */
function refusedNow(context: DevicesContext, device: PresentDevice): RefusedParams {
  const last = context.records.at(-1);
  if (!last || last.outcome !== 'refused' || last.id !== device.id || last.at !== device.at) return null;
  return { id: last.id, path: last.path, reason: last.lastError?.message ?? 'refused' };
}

/**
 * The peripherals concern. The hotplug actor reports devices present and gone; each one a
 * profile matches becomes a `device:<id>` actor, up to `maxDevices` (beyond that it is refused
 * and recorded, and gets the next slot that frees up while it is still present). A detach sends `device.detach`; the child reaches `gone`, is stopped, and
 * its outcome is kept as a bounded record, not as a live actor.
 */
export const devicesMachine = setup({
  types: {} as {
    context: DevicesContext;
    events:
      | HotplugEvent
      | { type: `xstate.done.actor.${string}`; actorId?: string; output?: DeviceOutput }
      | { type: `xstate.error.actor.${string}`; actorId?: string; error?: unknown };
    input: DevicesInput;
  },
  actors: {
    hotplug: needsCallback<HotplugEvent>('hotplug'),
    commands: needsCallback('commands'),
    device: needsCallback('device') as AnyActorLogic,
  },
  guards: {
    isDeviceChild: ({ event }) => isDeviceChild((event as { actorId?: string }).actorId),
  },
  actions: {
    /** src/ logs it: a device is never left out without a word (params null: nothing refused) */
    refused: (_, _params: RefusedParams) => {},
    attach: enqueueActions(({ enqueue, context, event, self }) => {
      const device = (event as Extract<HotplugEvent, { type: 'devices.attached' }>).device;
      const running = self.getSnapshot().children[childId(device.id)];
      const before = context.present[device.id];
      enqueue.assign({ present: { ...context.present, [device.id]: device } });
      // Same device, same profile and port: nothing to do. Otherwise the old one goes first.
      if (running && before && before.profile === device.profile && before.path === device.path) return;
      if (running) enqueue.stopChild(childId(device.id));
      if (device.profile === null) return;
      const live = Object.keys(self.getSnapshot().children).filter((id) => isDeviceChild(id) && id !== childId(device.id)).length;
      if (live >= context.maxDevices) {
        enqueue.assign({
          refused: context.refused + 1,
          records: remember(context, { id: device.id, profile: device.profile, path: device.path, outcome: 'refused', reconnects: 0, lastError: { code: 'max_devices', message: `more than ${context.maxDevices} devices` }, at: device.at }),
        });
        return;
      }
      enqueue.assign({ spawned: context.spawned + 1 });
      enqueue.spawnChild('device', {
        id: childId(device.id),
        input: { id: device.id, path: device.path, profile: device.profile, retry: context.retry, jitterSeed: context.jitterSeed + context.spawned },
      });
    }),
    detach: enqueueActions(({ enqueue, context, event, self }) => {
      const { id } = event as Extract<HotplugEvent, { type: 'devices.detached' }>;
      const { [id]: _gone, ...present } = context.present;
      enqueue.assign({ present });
      if (self.getSnapshot().children[childId(id)]) enqueue.sendTo(childId(id), { type: 'device.detach' });
    }),
    finish: enqueueActions(({ enqueue, context, event, self }) => {
      const actorId = (event as { actorId?: string }).actorId!;
      const id = actorId.slice('device:'.length);
      const output = (event as { output?: DeviceOutput }).output;
      const known = context.present[id];
      const crashed = event.type.startsWith('xstate.error.');
      enqueue.assign({
        records: remember(context, {
          id,
          profile: output?.profile ?? known?.profile ?? null,
          path: output?.path ?? known?.path ?? '',
          outcome: crashed ? 'crashed' : 'gone',
          reconnects: output?.reconnects ?? 0,
          lastError: crashed ? toFailure((event as { error?: unknown }).error, 'crashed') : (output?.lastError ?? null),
          at: known?.at ?? 0,
        }),
      });
      // A new device:<id> may have replaced the one that ended: only a finished one is stopped.
      const children = self.getSnapshot().children;
      const finished = children[actorId]?.getSnapshot().status !== 'active';
      if (finished) enqueue.stopChild(actorId);
      // The freed slot goes to the device refused longest ago that is still present.
      const live = Object.keys(children).filter((c) => isDeviceChild(c) && !(finished && c === actorId)).length;
      const waiting = Object.values(context.present).find((d) => d.profile !== null && d.id !== id && !children[childId(d.id)]);
      if (finished && waiting && live < context.maxDevices) {
        enqueue.assign({ spawned: context.spawned + 1 });
        enqueue.spawnChild('device', {
          id: childId(waiting.id),
          input: { id: waiting.id, path: waiting.path, profile: waiting.profile!, retry: context.retry, jitterSeed: context.jitterSeed + context.spawned },
        });
      }
    }),
  },
}).createMachine({
  id: 'devices',
  version: devicesVersion,
  options: { maxIterations: 1000 },
  context: ({ input }) => ({ ...input, present: {}, records: [], source: null, problem: null, spawned: 0, refused: 0, lastError: null }),
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
        'devices.attached': { actions: ['attach', { type: 'refused', params: ({ context, event }) => refusedNow(context, event.device) }] },
        'devices.detached': { actions: 'detach' },
        'devices.source': { actions: assign({ source: ({ event }) => event.source, problem: ({ event }) => event.problem }) },
        'xstate.done.actor.*': { guard: 'isDeviceChild', actions: 'finish' },
        'xstate.error.actor.*': { guard: 'isDeviceChild', actions: 'finish' },
      },
    },
    // The supervisor restarts the concern; devices found again are reopened.
    broken: { type: 'final' },
  },
});
