import { randomUUID } from 'node:crypto';
import type { AnyActorRef } from 'xstate';
import type { DeviceContext, DeviceEmitted, DeviceWrite, WriteRefusal } from '../../machines/device.js';
import type { DevicesContext } from '../../machines/devices.js';
import type { Logger } from '../log.js';
import { checkCommand } from './commands.js';
import type { DeviceHub } from './hub.js';
import type { Profile } from './profiles.js';

export type WriteOrigin = 'mqtt' | 'http' | 'ws';

/** The answer every write path gives (HTTP body, MQTT .../command/result, /ws write.result). */
export type WriteResult =
  | { id: string; device: string; accepted: true; bytes: number }
  | { id: string; device: string; accepted: false; reason: WriteRefusal; message: string };

export interface WriterDeps {
  /** the devices concern's actor, while it runs */
  manager: () => AnyActorRef | undefined;
  profile: (name: string) => Profile | undefined;
  hub: DeviceHub;
  log: Logger;
  /** how long to wait for the device's answer beyond the profile's write timeout */
  graceMs?: number;
  /** writes waiting for their answer, all devices together; more are refused (busy) */
  maxPending?: number;
}

/**
 * The one way in for commands to devices, shared by MQTT, HTTP and /ws. It checks the
 * command against the device's profile, sends it to the device's chart as an event (the
 * chart refuses it unless the port is open and idle; the port actor that owns the port writes
 * it) and waits, with a bound, for the chart's `device.write.result`. Nothing is queued.
 */
export class DeviceWriter {
  private pending = 0;

  constructor(private readonly deps: WriterDeps) {}

  async write(device: string, command: string | Uint8Array, origin: WriteOrigin): Promise<WriteResult> {
    const id = randomUUID();
    const result = await this.attempt(id, device, command);
    const fields = { device, origin, writeId: id };
    if (result.accepted) this.deps.log.info({ ...fields, bytes: result.bytes }, 'command written');
    else this.deps.log.info({ ...fields, reason: result.reason, err: result.message }, 'command refused');
    // counted for devices that exist only: a made-up id must not grow the counters
    if (result.accepted || (result.reason !== 'unknown_device' && result.reason !== 'unavailable')) {
      const counters = this.deps.hub.countersOf(device);
      if (result.accepted) counters.writes++;
      else counters.writesRefused[result.reason] = (counters.writesRefused[result.reason] ?? 0) + 1;
    }
    return result;
  }

  private async attempt(id: string, device: string, command: string | Uint8Array): Promise<WriteResult> {
    const refuse = (reason: WriteRefusal, message: string): WriteResult => ({ id, device, accepted: false, reason, message });
    const manager = this.deps.manager();
    const snapshot = manager?.getSnapshot() as { status: string; context: DevicesContext; children: Record<string, AnyActorRef | undefined> } | undefined;
    if (!snapshot || snapshot.status !== 'active') return refuse('unavailable', 'the devices concern is not running');
    const child = snapshot.children[`device:${device}`];
    if (!child) {
      const present = snapshot.context.present[device];
      if (!present) return refuse('unknown_device', `no device "${device}" is present`);
      return refuse(
        'not_open',
        present.profile === null ? 'no profile matches this device: it is not opened' : 'this device is not opened (see its row in /api/v1/devices)',
      );
    }
    const profile = this.deps.profile((child.getSnapshot() as { context: DeviceContext }).context.profile);
    const checked = checkCommand(profile?.commands, command);
    if (!checked.ok) return refuse(checked.reason, checked.message);
    if (this.pending >= (this.deps.maxPending ?? 256)) return refuse('busy', 'too many writes are waiting for their devices');
    return this.send(child, id, device, checked.data, profile!.commands!.timeoutMs + (this.deps.graceMs ?? 1000));
  }

  /** Sends the write to the device chart and waits for its one answer, or the time limit. */
  private send(child: AnyActorRef, id: string, device: string, data: string, waitMs: number): Promise<WriteResult> {
    this.pending++;
    return new Promise<WriteResult>((resolve) => {
      const finish = (result: WriteResult) => {
        clearTimeout(timer);
        subscription.unsubscribe();
        this.pending--;
        resolve(result);
      };
      const timer = setTimeout(
        () => finish({ id, device, accepted: false, reason: 'timeout', message: `no answer from the device within ${waitMs} ms` }),
        waitMs,
      );
      const subscription = child.on('device.write.result', (event: DeviceEmitted) => {
        if (event.requestId !== id) return;
        const { type: _type, requestId: _requestId, ...outcome } = event;
        finish({ id, device, ...outcome });
      });
      child.send({ type: 'device.write', requestId: id, data } satisfies DeviceWrite);
    });
  }
}
