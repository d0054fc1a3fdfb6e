import type { Logger } from '../log.js';
import type { StoredSample } from './history.js';
import type { HistoryWriter } from './history-writer.js';
import type { MonitorHub } from './hub.js';
import { decodeInventory, inventoryTopicDevice } from './inventory.js';
import type { LogOnce } from './log-once.js';
import { decodeSample, deviceOfTopic } from './payload.js';
import type { MonitorStats } from './stats.js';

/** What one collected message stores, once the history's writer thread has it. */
export interface Store {
  device: string;
  commit: (writer: HistoryWriter) => Promise<void>;
}

export interface RouteContext {
  topicPrefix: string;
  /** this agent: its own samples are stored when taken, not again from the broker */
  thingName: string;
  hub: MonitorHub;
  stats: MonitorStats;
  logOnce: LogOnce;
  log: Logger;
}

/**
 * Turns a collected message into what to store, or undefined when there is nothing to store:
 * our own message, or one refused (counted, logged once per device per minute, and dropped;
 * it can never be stored, so it is acknowledged like any other).
 */
export function collectorRoute(ctx: RouteContext): (topic: string, payload: Buffer) => Store | undefined {
  const reject = (device: string, reason: string) => {
    ctx.stats.collectorRejects++;
    if (ctx.logOnce.allows(device))
      ctx.log.warn({ device, reason }, 'monitoring sample refused (further ones from this device are counted, logged once a minute)');
  };
  const badTopic = (topic: string) => reject(topic.slice(0, 200), 'the topic does not name a valid device id');

  const sample = (topic: string, payload: Buffer): Store | undefined => {
    const device = deviceOfTopic(topic, ctx.topicPrefix);
    if (!device) return void badTopic(topic);
    if (device === ctx.thingName) return undefined;
    const decoded = decodeSample(payload);
    if (!decoded.ok) return void reject(device, decoded.reason);
    const stored: StoredSample = { device, ts: decoded.sample.ts, values: decoded.sample.values };
    const commit = async (writer: HistoryWriter) => {
      const [outcome] = await writer.insert([stored]);
      if (outcome && 'refused' in outcome) reject(device, outcome.refused);
      else ctx.hub.publish(stored);
    };
    return { device, commit };
  };

  /** A peer's inventory (retained on <prefix>/<device>/inventory): the newest is kept. */
  const inventory = (topic: string, payload: Buffer): Store | undefined => {
    const device = inventoryTopicDevice(topic, ctx.topicPrefix);
    if (!device) return void badTopic(topic);
    if (device === ctx.thingName) return undefined;
    const decoded = decodeInventory(payload);
    if (!decoded.ok) return void reject(device, `inventory: ${decoded.reason}`);
    const kept = { ...decoded.inventory, device };
    const commit = (writer: HistoryWriter) =>
      writer.putInventory(device, kept).catch((error: { code?: string; message?: string }) => {
        if (error?.code !== 'history_full') throw error;
        reject(device, String(error.message));
      });
    return { device, commit };
  };

  return (topic, payload) => {
    ctx.stats.collectorMessages++;
    return topic.endsWith('/inventory') ? inventory(topic, payload) : sample(topic, payload);
  };
}
