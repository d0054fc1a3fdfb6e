import type { AlertNotice } from '../../machines/alert.js';
import type { Outbox } from '../outbox/queue.js';
import type { Slot } from '../slot.js';
import { ChannelError, type Channel } from './channel.js';

/** The payload on `<prefix>/<thing>/alerts`: the notice with a schema version. */
export const alertPayload = (notice: AlertNotice) => JSON.stringify({ v: 1, ...notice });

export interface MqttAlertPorts {
  outbox: Slot<Outbox>;
  /** `devices/<thingName>/alerts` (the prefix is monitor.topicPrefix) */
  topic: string;
}

/**
 * Notices to MQTT through the durable outbox (QoS 1, not retained): a notice is delivered
 * here once the outbox has it on disk; from there the outbox owns it across outages and
 * restarts. While the outbox is not open, or refuses (full, rejectNew), it is tried again.
 */
export function mqttChannel(ports: MqttAlertPorts): Channel {
  return {
    name: 'mqtt',
    async send(notice) {
      const outbox = ports.outbox.current;
      if (!outbox) throw new ChannelError('outbox_closed', 'the outbox is not open');
      await outbox.enqueue({ topic: ports.topic, payload: Buffer.from(alertPayload(notice)), qos: 1, retain: false }).catch((error: unknown) => {
        throw new ChannelError((error as { code?: string }).code ?? 'outbox', `the outbox refused the notice: ${(error as Error).message}`);
      });
    },
  };
}
