import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { CollectorEvent } from '../../../machines/monitor.js';
import type { Closing } from '../../closing.js';
import type { Logger } from '../../log.js';
import { HistoryLimitError, type History } from '../../monitor/history.js';
import type { MonitorHub } from '../../monitor/hub.js';
import { decodeSample, deviceOfTopic } from '../../monitor/payload.js';
import type { MonitorStats } from '../../monitor/stats.js';
import type { Slot } from '../../slot.js';

export interface CollectorPorts {
  enabled: boolean;
  url: string;
  /** the agent's connection options; the collector changes the client id, the session and the will */
  options: IClientOptions;
  topicPrefix: string;
  thingName: string;
  history: Slot<History>;
  hub: MonitorHub;
  stats: MonitorStats;
  closing: Closing;
  now: () => number;
  log: Logger;
}

/** A device's refusals are logged at most once per this long. */
const LOG_EVERY_MS = 60_000;
const MAX_LOGGED_DEVICES = 10_000;

/**
 * The `collector` actor (collector mode): its own MQTT connection with a persistent session
 * subscribes to <prefix>/+/monitoring at QoS 1 and stores every peer's sample. mqtt.js sends
 * the PUBACK only when handleMessage calls back, and it calls back after the sample is
 * committed to SQLite, so nothing the broker counts as delivered can be lost by a crash; a
 * sample that could not be stored is not acknowledged, and the connection is dropped so the
 * broker delivers it again. Bad payloads are counted, logged once per device per minute and
 * dropped (acknowledged: they can never be stored).
 */
export function collectorActor(ports: CollectorPorts) {
  return fromCallback<CollectorEvent, void>(({ sendBack }) => {
    if (!ports.enabled) {
      sendBack({ type: 'collector.status', state: 'off', problem: null });
      return () => {};
    }
    const topic = `${ports.topicPrefix}/+/monitoring`;
    const lastLogged = new Map<string, number>();
    const reject = (device: string, reason: string) => {
      ports.stats.collectorRejects++;
      const now = ports.now();
      if (now - (lastLogged.get(device) ?? -Infinity) < LOG_EVERY_MS) return;
      if (lastLogged.size >= MAX_LOGGED_DEVICES) lastLogged.clear();
      lastLogged.set(device, now);
      ports.log.warn({ device, reason }, 'monitoring sample refused (further ones from this device are counted, logged once a minute)');
    };
    /** true: acknowledge; false: leave unacknowledged (not stored). */
    const ingest = (packetTopic: string, payload: Buffer): boolean => {
      ports.stats.collectorMessages++;
      const device = deviceOfTopic(packetTopic, ports.topicPrefix);
      if (!device) return reject(packetTopic.slice(0, 200), 'the topic does not name a valid device id'), true;
      if (device === ports.thingName) return true; // our own samples are stored when taken
      const decoded = decodeSample(payload);
      if (!decoded.ok) return reject(device, decoded.reason), true;
      const history = ports.history.current;
      if (!history) return false;
      const sample = { device, ts: decoded.sample.ts, values: decoded.sample.values };
      try {
        history.insert(sample);
      } catch (error) {
        if (error instanceof HistoryLimitError) return reject(device, error.message), true;
        ports.log.error({ device, err: String(error) }, 'collected sample not stored');
        return false;
      }
      ports.hub.publish(sample);
      return true;
    };

    const clientId = `${ports.options.clientId ?? ports.thingName}-collector`;
    const client: MqttClient = mqtt.connect(ports.url, { ...ports.options, clientId, clean: false, will: undefined, reconnectPeriod: 1000 });
    client.handleMessage = (packet, callback) => {
      if (ingest(packet.topic, packet.payload as Buffer)) return callback();
      ports.stats.collectorStoreFailures++;
      // Not acknowledged: drop the connection so the broker sends it (and what follows) again.
      (client.stream as Socket | undefined)?.destroy();
      callback(new Error('sample not stored'));
    };
    sendBack({ type: 'collector.status', state: 'waiting', problem: 'connecting' });
    client.on('connect', (connack) => {
      (client.stream as Socket).setNoDelay?.(true);
      if (connack.sessionPresent) return sendBack({ type: 'collector.status', state: 'subscribed', problem: null });
      client.subscribe(topic, { qos: 1 }, (error) => {
        if (error) sendBack({ type: 'collector.status', state: 'waiting', problem: `subscribe ${topic}: ${error.message}` });
        else {
          ports.log.info({ topic, clientId }, 'collecting');
          sendBack({ type: 'collector.status', state: 'subscribed', problem: null });
        }
      });
    });
    client.on('error', (error) => ports.log.warn({ err: error.message }, 'collector connection error'));
    client.on('close', () => sendBack({ type: 'collector.status', state: 'waiting', problem: 'disconnected' }));
    return () => {
      client.removeAllListeners('close');
      client.on('error', () => {});
      ports.closing.track('collector', client.endAsync(false).catch(() => client.endAsync(true)));
    };
  });
}
