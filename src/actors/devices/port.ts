import { fromCallback } from 'xstate';
import type { PortCommand, PortEvent, PortRef, WriteOutcome } from '../../../machines/device.js';
import { toFailure } from '../../../machines/shared/types.js';
import type { Closing } from '../../closing.js';
import type { DeviceHub } from '../../devices/hub.js';
import type { Profile } from '../../devices/profiles.js';
import { createParser } from '../../devices/protocols.js';
import { closeSerialPort, type SerialPortLike } from '../../devices/serial-port.js';
import type { Logger } from '../../log.js';

export interface PortDeps {
  /** the loaded profile of that name, if any */
  profile: (name: string) => Profile | undefined;
  open: (path: string, profile: Profile) => Promise<SerialPortLike>;
  hub: DeviceHub;
  /** hands a reading to the outbox; false when it did not take it */
  publish: (id: string, reading: Record<string, unknown>, qos: 0 | 1) => boolean;
  closing: Closing;
  log: Logger;
  now?: () => number;
}

/**
 * The `port` actor of the device chart, the one owner of an open serial port: it opens the
 * port, parses what it reads (readings go to /ws subscribers and the outbox, rejected frames
 * are counted by reason), and does the writes the chart sends it, one at a time, within the
 * profile's rate and time limits. Its cleanup closes the port.
 */
export function portActor(deps: PortDeps) {
  const now = deps.now ?? Date.now;
  return fromCallback<PortCommand, PortRef>(({ input, sendBack, receive }) => {
    const send = (event: PortEvent) => sendBack(event);
    const profile = deps.profile(input.profile);
    let port: SerialPortLike | undefined;
    let stopped = false;
    let detach = () => {};
    const bucket = profile?.commands ? new TokenBucket(profile.commands.maxPerSecond, now) : undefined;

    if (!profile) send({ type: 'device.lost', error: { code: 'no_profile', message: `profile "${input.profile}" is not loaded` } });
    else {
      deps.open(input.path, profile).then(
        (opened) => {
          if (stopped) return void deps.closing.track(`port ${input.path}`, closeSerialPort(opened));
          port = opened;
          detach = stream(opened, profile, input, send, deps, now);
          deps.log.info(
            { device: input.id, path: input.path, baudRate: profile.serial.baudRate, protocol: profile.protocol.type, commands: Boolean(profile.commands) },
            'port open',
          );
          send({ type: 'port.opened' });
        },
        (error) => {
          if (!stopped) send({ type: 'device.lost', error: toFailure(error, 'open_failed') });
        },
      );
    }

    receive((command) => {
      if (command.type !== 'port.write') return;
      const answer = (outcome: WriteOutcome) => {
        if (!stopped) send({ type: 'port.written', ...outcome });
      };
      const { requestId, data } = command;
      if (!port || !profile?.commands || !bucket) return answer({ requestId, accepted: false, reason: 'not_open', message: 'the port is not open' });
      if (!bucket.take())
        return answer({ requestId, accepted: false, reason: 'rate_limited', message: `more than ${profile.commands.maxPerSecond} writes per second` });
      void writeAll(port, Buffer.from(data, 'utf8'), profile.commands.timeoutMs).then((failure) =>
        answer(failure ? { requestId, accepted: false, ...failure } : { requestId, accepted: true, bytes: Buffer.byteLength(data) }),
      );
    });

    return () => {
      stopped = true;
      detach();
      if (port) deps.closing.track(`port ${input.path}`, closeSerialPort(port));
    };
  });
}

/** Reads from the open port through the profile's parser; returns what undoes the listeners. */
function stream(port: SerialPortLike, profile: Profile, ref: PortRef, send: (event: PortEvent) => void, deps: PortDeps, now: () => number): () => void {
  const counters = deps.hub.countersOf(ref.id);
  const parser = createParser(profile.protocol);
  const qos = profile.publish.qos;
  let badInARow = 0;
  let failing = false;
  const onData = (chunk: Buffer) => {
    counters.bytes += chunk.length;
    // Live subscribers get every reading of this read first; the outbox takes them after.
    const queued: Array<Record<string, unknown>> = [];
    parser.push(chunk, (frame) => {
      if (!frame.ok) {
        deps.hub.reject(ref.id, { reason: frame.reason, message: frame.error, at: now() });
        if (++badInARow >= profile.failing.malformedInARow && !failing) {
          failing = true;
          send({ type: 'device.garbage' });
        }
        return;
      }
      badInARow = 0;
      if (failing) {
        failing = false;
        send({ type: 'device.recovered' });
      }
      counters.frames++;
      const ts = now();
      counters.lastFrameAt = ts;
      const reading: Record<string, unknown> = frame.data === undefined ? { line: frame.line, ts } : { line: frame.line, ts, data: frame.data };
      deps.hub.publish(ref.id, reading);
      queued.push(reading);
    });
    for (const reading of queued) if (!deps.publish(ref.id, reading, qos)) counters.dropped++;
  };
  const onClose = (error?: Error | null) => send({ type: 'device.lost', error: toFailure(error ?? { code: 'closed', message: 'the port closed' }, 'closed') });
  const onError = (error: Error) => deps.log.warn({ device: ref.id, err: error.message }, 'port error');
  port.on('data', onData);
  port.on('close', onClose);
  port.on('error', onError);
  return () => {
    port.off('data', onData);
    port.off('close', onClose);
    port.off('error', onError);
  };
}

/** Writes and waits until the bytes have left (tcdrain); a failure, or null when written. */
function writeAll(port: SerialPortLike, bytes: Buffer, timeoutMs: number): Promise<{ reason: 'write_failed' | 'timeout'; message: string } | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ reason: 'timeout', message: `the port did not take the command within ${timeoutMs} ms` }), timeoutMs);
    const done = (error: Error | null | undefined) => {
      clearTimeout(timer);
      resolve(error ? { reason: 'write_failed', message: error.message } : null);
    };
    try {
      port.write(bytes, (error) => (error ? done(error) : port.drain((e) => done(e))));
    } catch (error) {
      done(error as Error);
    }
  });
}

/** At most `perSecond` writes a second, in bursts of up to that many (at least one). */
class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly capacity: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.capacity = Math.max(1, perSecond);
    this.tokens = this.capacity;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
