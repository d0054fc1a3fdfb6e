import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { OutboxCounters, OutboxStoreCommand, OutboxStoreEvent } from '../../machines/outbox.js';
import { toFailure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Logger } from '../log.js';
import { Drainer } from '../outbox/drainer.js';
import { Outbox, type OutboxLimits, type OutboxStats } from '../outbox/queue.js';
import type { Slot } from '../slot.js';

export interface OutboxStoreDeps {
  stateDir: string;
  limits: OutboxLimits;
  maxInFlight: number;
  /** the connected MQTT client, while there is one */
  session: Slot<MqttClient>;
  /** where the open outbox is offered to the API and other concerns */
  outbox: Slot<Outbox>;
  closing: Closing;
  log: Logger;
  /** counters reach the chart at most this often */
  statsIntervalMs?: number;
}

const countersOf = (s: OutboxStats): OutboxCounters => ({
  depth: s.depth,
  bytes: s.bytes,
  full: s.full,
  enqueued: s.enqueued,
  delivered: s.delivered,
  dropped: s.dropped,
  refused: s.refused,
});

/**
 * The outbox's data plane (the `outboxStore` actor of the outbox chart): opens the durable
 * queue in <stateDir>/outbox, reports whether the link is up, drains while the chart says so,
 * and sends throttled counters. Messages never pass through the chart.
 */
export function outboxStoreActor(deps: OutboxStoreDeps) {
  return fromCallback<OutboxStoreCommand, void>(({ sendBack: send, receive }) => {
    const sendBack = (event: OutboxStoreEvent) => send(event);
    let outbox: Outbox | undefined;
    let drainer: Drainer | undefined;
    let stopped = false;
    let statsTimer: NodeJS.Timeout | undefined;
    const unsubscribe = deps.session.subscribe((client) => {
      if (!client) drainer?.stop();
      sendBack({ type: client ? 'link.up' : 'link.down' });
    });
    if (deps.session.current) sendBack({ type: 'link.up' });

    const sendStats = () => {
      statsTimer = undefined;
      if (outbox) sendBack({ type: 'outbox.stats', counters: countersOf(outbox.stats()) });
    };

    Outbox.open(join(deps.stateDir, 'outbox'), deps.limits).then(
      (opened) => {
        if (stopped) return void deps.closing.track('outbox', opened.close());
        outbox = opened;
        drainer = new Drainer(opened, deps.maxInFlight);
        const stats = opened.stats();
        if (stats.recoveredMessages || stats.corruptRegions || stats.tornBytes) {
          deps.log.info({ recovered: stats.recoveredMessages, corruptRegions: stats.corruptRegions, tornBytes: stats.tornBytes }, 'outbox recovered');
        }
        opened.on('change', () => (statsTimer ??= setTimeout(sendStats, deps.statsIntervalMs ?? 250)));
        opened.on('error', (error) => sendBack({ type: 'outbox.failed', error: toFailure(error) }));
        deps.outbox.set(opened);
        sendBack({ type: 'outbox.opened', counters: countersOf(stats) });
      },
      (error) => sendBack({ type: 'outbox.failed', error: toFailure(error) }),
    );

    receive((command) => {
      if (command.type === 'drain.start' && deps.session.current) drainer?.start(deps.session.current);
      if (command.type === 'drain.stop') drainer?.stop();
    });

    return () => {
      stopped = true;
      unsubscribe();
      clearTimeout(statsTimer);
      drainer?.stop();
      if (outbox) {
        deps.outbox.clear(outbox);
        deps.closing.track('outbox', outbox.close());
      }
    };
  });
}
