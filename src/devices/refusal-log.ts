import type { AnyActorRef, SnapshotFrom } from 'xstate';
import type { devicesMachine } from '../../machines/devices.js';
import type { Logger } from '../log.js';

type DevicesSnapshot = SnapshotFrom<typeof devicesMachine>;

/**
 * Logs each device the devices concern refused (over maxDevices), once, from its snapshots:
 * a device is never left out without a word, and the chart does no I/O to say so. One event
 * refuses at most one device, so a grown `refused` count means the newest record is it.
 */
export function refusalLog(log: Logger): (ref: AnyActorRef) => void {
  let manager: AnyActorRef | undefined;
  let seen = 0;
  return (ref) => {
    if (ref.id !== 'devices') return;
    const snap = ref.getSnapshot() as DevicesSnapshot;
    if (snap.status !== 'active') return;
    // a restarted concern counts from zero again
    if (ref !== manager) (manager = ref), (seen = 0);
    const { refused, records } = snap.context;
    if (refused <= seen) return;
    seen = refused;
    const last = records.at(-1);
    if (last?.outcome === 'refused') log.warn({ device: last.id, path: last.path, reason: last.lastError?.message ?? 'refused' }, 'device refused: not opened');
  };
}
