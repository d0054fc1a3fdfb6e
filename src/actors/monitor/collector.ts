import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { CollectorEvent } from '../../../machines/monitor.js';
import type { Closing } from '../../closing.js';
import type { Logger } from '../../log.js';
import { AckQueue } from '../../monitor/ack-queue.js';
import type { StoredSample } from '../../monitor/history.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
import type { MonitorHub } from '../../monitor/hub.js';
import { decodeInventory, inventoryTopicDevice } from '../../monitor/inventory.js';
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
  /** the history's writer thread */
  writer: Slot<HistoryWriter>;
  hub: MonitorHub;
  stats: MonitorStats;
  closing: Closing;
  now: () => number;
  log: Logger;
}

/** A device's refusals are logged at most once per this long. */
const LOG_EVERY_MS = 60_000;
const MAX_LOGGED_DEVICES = 10_000;
/** QoS 1 samples received and not yet acknowledged at most: beyond, the next packet waits. */
const MAX_HELD = 1000;
/** What one message stores, once the history's writer thread has it. */
interface Store {
  device: string;
  commit: (writer: HistoryWriter) => Promise<void>;
}

/** Given to mqtt.js's handleMessage callback: it then reads the next packet without sending its own PUBACK. */
const HELD = new Error('acknowledged once committed');

/**
 * The `collector` actor (collector mode): its own MQTT connection with a persistent session
 * subscribes to <prefix>/+/monitoring at QoS 1 and stores every peer's sample.
 *
 * Group commit: each sample goes to the history's writer thread as soon as it is checked,
 * and mqtt.js is let on to the next packet at once; the thread commits everything that
 * arrived meanwhile in one transaction. A sample's PUBACK is held until its commit, then
 * sent in arrival order (AckQueue), so nothing the broker counts as delivered can be lost
 * by a crash. A batch whose commit fails is not acknowledged at all: the connection is
 * dropped and the broker delivers those samples again from the session. Bad payloads are
 * counted, logged once per device per minute and acknowledged (they can never be stored).
 */
export function collectorActor(ports: CollectorPorts) {
  return fromCallback<CollectorEvent, void>(({ sendBack }) => {
    if (!ports.enabled) {
      sendBack({ type: 'collector.status', state: 'off', problem: null });
      return () => {};
    }
    const topics = [`${ports.topicPrefix}/+/monitoring`, `${ports.topicPrefix}/+/inventory`];
    const lastLogged = new Map<string, number>();
    const logOnce = (key: string) => {
      const now = ports.now();
      if (now - (lastLogged.get(key) ?? -Infinity) < LOG_EVERY_MS) return false;
      if (lastLogged.size >= MAX_LOGGED_DEVICES) lastLogged.clear();
      lastLogged.set(key, now);
      return true;
    };
    const reject = (device: string, reason: string) => {
      ports.stats.collectorRejects++;
      if (logOnce(device)) ports.log.warn({ device, reason }, 'monitoring sample refused (further ones from this device are counted, logged once a minute)');
    };
    /** What to store for a message, or undefined when there is nothing to store (refused, or our own). */
    const route = (packetTopic: string, payload: Buffer): Store | undefined => {
      ports.stats.collectorMessages++;
      if (packetTopic.endsWith('/inventory')) return inventoryStore(packetTopic, payload);
      const device = deviceOfTopic(packetTopic, ports.topicPrefix);
      if (!device) return (reject(packetTopic.slice(0, 200), 'the topic does not name a valid device id'), undefined);
      if (device === ports.thingName) return undefined; // our own samples are stored when taken
      const decoded = decodeSample(payload);
      if (!decoded.ok) return (reject(device, decoded.reason), undefined);
      const sample: StoredSample = { device, ts: decoded.sample.ts, values: decoded.sample.values };
      return {
        device,
        commit: (writer) =>
          writer.insert([sample]).then(([outcome]) => {
            if (outcome && 'refused' in outcome) reject(device, outcome.refused);
            else ports.hub.publish(sample);
          }),
      };
    };
    /** A peer's inventory (retained on <prefix>/<device>/inventory): the newest is kept. */
    const inventoryStore = (packetTopic: string, payload: Buffer): Store | undefined => {
      const device = inventoryTopicDevice(packetTopic, ports.topicPrefix);
      if (!device) return (reject(packetTopic.slice(0, 200), 'the topic does not name a valid device id'), undefined);
      if (device === ports.thingName) return undefined;
      const decoded = decodeInventory(payload);
      if (!decoded.ok) return (reject(device, `inventory: ${decoded.reason}`), undefined);
      const inventory = { ...decoded.inventory, device };
      return {
        device,
        commit: (writer) =>
          writer.putInventory(device, inventory).catch((error: { code?: string; message?: string }) => {
            if (error?.code !== 'history_full') throw error;
            reject(device, String(error.message));
          }),
      };
    };
    /** Not stored: counted, and the connection dropped so the broker sends it (and what follows) again. */
    const unstored = (device: string, error: unknown) => {
      ports.stats.collectorStoreFailures++;
      if (logOnce('\0store'))
        ports.log.error({ device, err: String(error) }, 'collected samples not stored: not acknowledged, the broker sends them again (logged once a minute)');
      (client.stream as Socket | undefined)?.destroy();
    };
    const store = (job: Store, release: () => void) => {
      const writer = ports.writer.current;
      if (!writer) return unstored(job.device, new Error('the metric history is not open'));
      job.commit(writer).then(release, (error) => unstored(job.device, error));
    };

    const clientId = `${ports.options.clientId ?? ports.thingName}-collector`;
    const client: MqttClient = mqtt.connect(ports.url, { ...ports.options, clientId, clean: false, will: undefined, reconnectPeriod: 1000 });
    // mqtt.js has no public call to acknowledge later; its own PUBACK path, without the offline store.
    const acks = new AckQueue((messageId) => client['_sendPacket']({ cmd: 'puback', messageId }, undefined, undefined, true));
    client.handleMessage = (packet, callback) => {
      const job = route(packet.topic, packet.payload as Buffer);
      if (packet.qos !== 1 || packet.messageId === undefined) {
        if (job) store(job, () => {});
        return callback();
      }
      const next = () => callback(HELD);
      const full = acks.size >= MAX_HELD;
      const release = acks.hold(packet.messageId, full ? next : undefined);
      if (job) store(job, release);
      else release();
      if (!full) next();
    };
    sendBack({ type: 'collector.status', state: 'waiting', problem: 'connecting' });
    client.on('connect', (connack) => {
      (client.stream as Socket).setNoDelay?.(true);
      // Every time, session or not: a session kept from an older version may lack the inventory topic.
      client.subscribe(topics, { qos: 1 }, (error) => {
        if (error) sendBack({ type: 'collector.status', state: 'waiting', problem: `subscribe ${topics.join(', ')}: ${error.message}` });
        else {
          if (!connack.sessionPresent) ports.log.info({ topics, clientId }, 'collecting');
          sendBack({ type: 'collector.status', state: 'subscribed', problem: null });
        }
      });
    });
    client.on('error', (error) => ports.log.warn({ err: error.message }, 'collector connection error'));
    client.on('close', () => {
      acks.reset();
      sendBack({ type: 'collector.status', state: 'waiting', problem: 'disconnected' });
    });
    return () => {
      client.removeAllListeners('close');
      client.on('error', () => {});
      ports.closing.track(
        'collector',
        client.endAsync(false).catch(() => client.endAsync(true)),
      );
    };
  });
}
