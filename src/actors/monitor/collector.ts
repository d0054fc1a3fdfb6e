import type { IClientOptions } from 'mqtt';
import { fromCallback } from 'xstate';
import type { CollectorEvent } from '../../../machines/monitor.js';
import type { Closing } from '../../closing.js';
import type { Logger } from '../../log.js';
import { type CollectorConnection, type CollectorShape, collectorPlan, retiredConnections } from '../../monitor/collector-plan.js';
import { collectorRoute } from '../../monitor/collector-route.js';
import { endSession, readSessionRecord, writeSessionRecord } from '../../monitor/collector-sessions.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
import type { MonitorHub } from '../../monitor/hub.js';
import { LogOnce } from '../../monitor/log-once.js';
import type { MonitorStats } from '../../monitor/stats.js';
import type { Slot } from '../../slot.js';
import { type CollectorLink, type LinkStatus, openCollectorLink } from './collector-link.js';

export interface CollectorPorts {
  enabled: boolean;
  url: string;
  /** the agent's connection options; the collector changes the client id, the session and the will */
  options: IClientOptions;
  shape: CollectorShape;
  thingName: string;
  /** where the client ids in use are recorded, so that sessions a smaller shape no longer uses are ended */
  sessionRecord: string;
  /** the history's writer thread */
  writer: Slot<HistoryWriter>;
  hub: MonitorHub;
  stats: MonitorStats;
  closing: Closing;
  now: () => number;
  log: Logger;
}

/** A device's refusals are logged at most once per this long, for this many devices at most. */
const LOG_EVERY_MS = 60_000;
const MAX_LOGGED_DEVICES = 10_000;
/** A retired session is drained until no message came for this long, for this long at most. */
const DRAIN_QUIET_MS = 2000;
const DRAIN_MAX_MS = 60_000;

/**
 * The `collector` actor (collector mode): stores every peer's samples and inventories from
 * <prefix>/+/monitoring and <prefix>/+/inventory, over the connections of collectorPlan,
 * each acknowledging a message only once it is committed (collector-link.ts). Its state is
 * `subscribed` when every connection is, else `waiting` with the first connection's problem;
 * it is sent when it changes, never per message.
 */
export function collectorActor(ports: CollectorPorts) {
  return fromCallback<CollectorEvent, void>(({ sendBack }) => {
    if (!ports.enabled) {
      sendBack({ type: 'collector.status', state: 'off', problem: null });
      return () => {};
    }
    const { log } = ports;
    const logOnce = new LogOnce(LOG_EVERY_MS, MAX_LOGGED_DEVICES, ports.now);
    const route = collectorRoute({ topicPrefix: ports.shape.topicPrefix, thingName: ports.thingName, hub: ports.hub, stats: ports.stats, logOnce, log });
    const plan = collectorPlan(ports.shape);
    const statuses: LinkStatus[] = plan.map(() => ({ state: 'waiting', problem: 'connecting' }));
    let told = '';
    const tell = () => {
      const trouble = statuses.find((s) => s.state !== 'subscribed');
      const event: CollectorEvent = { type: 'collector.status', state: trouble ? 'waiting' : 'subscribed', problem: trouble?.problem ?? null };
      const key = `${event.state}\0${event.problem}`;
      if (key !== told) sendBack(event);
      told = key;
    };
    tell();
    const open = (connection: CollectorConnection, mode: 'collect' | 'drain', onStatus: (status: LinkStatus) => void) =>
      openCollectorLink({ url: ports.url, options: ports.options, connection, mode, route, writer: ports.writer, stats: ports.stats, logOnce, log, onStatus });
    const links = plan.map((connection, i) =>
      open(connection, 'collect', (status) => {
        statuses[i] = status;
        tell();
      }),
    );
    const retiring = new Set<CollectorLink>();
    let stopped = false;
    void retireOldSessions(ports, plan, (connection) => {
      if (stopped) return undefined;
      const link = open(connection, 'drain', () => {});
      retiring.add(link);
      return link;
    }).finally(() => retiring.clear());
    return () => {
      stopped = true;
      ports.closing.track('collector', Promise.all([...links, ...retiring].map((link) => link.close())));
    };
  });
}

/**
 * Ends the sessions an earlier, larger or differently shaped collector left on the broker,
 * after storing what they still hold (the broker queued samples for them while the agent was
 * down). The record keeps a session until it is ended, so one the broker could not be asked
 * about now is drained at the next start.
 */
async function retireOldSessions(
  ports: CollectorPorts,
  inUse: CollectorConnection[],
  drain: (connection: CollectorConnection) => CollectorLink | undefined,
): Promise<void> {
  const retired = retiredConnections(await readSessionRecord(ports.sessionRecord), inUse, ports.shape);
  const left: CollectorConnection[] = [];
  try {
    await writeSessionRecord(ports.sessionRecord, [...inUse, ...retired]);
    for (const connection of retired) {
      const link = drain(connection);
      if (!link) return; // stopped: the record still names what is left
      const drained = await Promise.race([link.quiet(DRAIN_QUIET_MS).then(() => true), sleep(DRAIN_MAX_MS).then(() => false)]);
      await link.close();
      const ended =
        drained &&
        (await endSession(ports.url, ports.options, connection.clientId).then(
          () => true,
          () => false,
        ));
      if (ended) {
        ports.log.info({ clientId: connection.clientId }, 'collector session no longer used: drained and ended');
      } else {
        left.push(connection);
        ports.log.warn({ clientId: connection.clientId }, 'collector session no longer used: not drained yet, again at the next start');
      }
    }
    await writeSessionRecord(ports.sessionRecord, [...inUse, ...left]);
  } catch (error) {
    ports.log.warn({ err: String(error), file: ports.sessionRecord }, 'collector session record not written');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
