import type { MqttClient } from 'mqtt';
import { fromCallback, type EventObject } from 'xstate';
import type { DeviceWriter, WriteResult } from '../../devices/writer.js';
import type { Logger } from '../../log.js';
import type { Slot } from '../../slot.js';

export interface CommandFeedDeps {
  thingName: string;
  /** the connected MQTT client, while there is one */
  session: Slot<MqttClient>;
  writer: DeviceWriter;
  /** sends the answer (through the outbox) */
  answer: (topic: string, result: WriteResult & { command: string; ts: number }) => void;
  log: Logger;
  now: () => number;
}

/** The echo of the command in the answer, at most this many characters. */
const ECHO_CHARS = 256;

/**
 * The `commands` actor of the devices chart: commands to peripherals over MQTT. It subscribes
 * to devices/<thing>/peripherals/+/command on every connection; each message's payload is the
 * command text, written through the DeviceWriter, and answered on .../command/result with
 * {id, device, accepted, bytes | reason, message, command, ts} (QoS 1, not retained).
 */
export function commandFeedActor(deps: CommandFeedDeps) {
  const prefix = `devices/${deps.thingName}/peripherals/`;
  const filter = `${prefix}+/command`;
  return fromCallback<EventObject, void>(() => {
    let client: MqttClient | undefined;
    const onMessage = (topic: string, payload: Buffer) => {
      if (!topic.startsWith(prefix) || !topic.endsWith('/command')) return;
      const device = topic.slice(prefix.length, -'/command'.length);
      if (device.includes('/')) return;
      // an over-long payload is refused by the writer before it is decoded
      void deps.writer
        .write(device, payload, 'mqtt')
        .then((result) => deps.answer(`${prefix}${device}/command/result`, { ...result, command: echo(payload), ts: deps.now() }));
    };
    const follow = (next: MqttClient | undefined) => {
      client?.off('message', onMessage);
      client = next;
      if (!next) return;
      next.on('message', onMessage);
      next.subscribeAsync(filter, { qos: 1 }).catch((error) => deps.log.warn({ topic: filter, err: String(error) }, 'cannot subscribe to device commands'));
    };
    const unsubscribe = deps.session.subscribe(follow);
    follow(deps.session.current);
    return () => {
      unsubscribe();
      client?.off('message', onMessage);
      if (client?.connected) client.unsubscribe(filter, () => {});
    };
  });
}

function echo(payload: Buffer): string {
  const text = payload.subarray(0, ECHO_CHARS * 4).toString('utf8');
  return text.length > ECHO_CHARS ? `${text.slice(0, ECHO_CHARS)}…` : text;
}
