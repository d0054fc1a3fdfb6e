import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { OutboxCounters, OutboxStoreCommand, OutboxStoreEvent } from '../../machines/outbox.js';
import { toFailure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Logger } from '../log.js';
import { DeadLetters } from '../outbox/dead-letters.js';
import { Drainer, type PoisonPolicy } from '../outbox/drainer.js';
import { Outbox, type OutboxLimits, type OutboxStats } from '../outbox/queue.js';
import type { Slot } from '../slot.js';

export interface OutboxStoreDeps {
  stateDir: string;
  limits: OutboxLimits;
  maxInFlight: number;
  poison: PoisonPolicy;
  maxDeadLetters: number;
  /** the connected MQTT client, while there is one */
  session: Slot<MqttClient>;
  /** where the open outbox is offered to the API and other concerns */
  outbox: Slot<Outbox>;
  /** where the dead letters are offered to the API and /metrics */
  deadLetters: Slot<DeadLetters>;
  closing: Closing;
  log: Logger;
  /** counters reach the chart at most this often */
  statsIntervalMs?: number;
}

const countersOf = (s: OutboxStats, deadLetters: DeadLetters): OutboxCounters => ({
  depth: s.depth,
  bytes: s.bytes,
  full: s.full,
  enqueued: s.enqueued,
  delivered: s.delivered,
  dropped: s.dropped,
  refused: s.refused,
  unwritable: s.unwritable,
  deadLettered: s.deadLettered,
  deadLetters: deadLetters.size,
});

/** Opens the queue in <stateDir>/outbox and the dead letters beside it. */
async function openStores(deps: OutboxStoreDeps) {
  const outbox = await Outbox.open(join(deps.stateDir, 'outbox'), deps.limits);
  try {
    const { store, unreadable } = await DeadLetters.open(join(deps.stateDir, 'outbox-dead-letters'), deps.maxDeadLetters);
    if (unreadable.length > 0) deps.log.warn({ files: unreadable }, 'dead letters that cannot be read were left in place');
    return { outbox, deadLetters: store };
  } catch (error) {
    await outbox.close();
    throw error;
  }
}

/**
 * The outbox's data plane (the `outboxStore` actor of the outbox chart): opens the durable
 * queue, reports whether the link is up, drains while the chart says so, moves a message
 * that keeps ending the connection to the dead letters, and sends throttled counters
 * (whether the disk takes writes among them). Messages never pass through the chart.
 */
export function outboxStoreActor(deps: OutboxStoreDeps) {
  return fromCallback<OutboxStoreCommand, void>(({ sendBack: send, receive }) => {
    const sendBack = (event: OutboxStoreEvent) => send(event);
    let stores: { outbox: Outbox; deadLetters: DeadLetters } | undefined;
    let drainer: Drainer | undefined;
    let stopped = false;
    let statsTimer: NodeJS.Timeout | undefined;
    const unsubscribe = deps.session.subscribe((client) => {
      if (!client) drainer?.connectionLost();
      sendBack({ type: client ? 'link.up' : 'link.down' });
    });
    if (deps.session.current) sendBack({ type: 'link.up' });

    let statsSentAt = 0;
    const sendStats = () => {
      statsTimer = undefined;
      statsSentAt = Date.now();
      if (stores) sendBack({ type: 'outbox.stats', counters: countersOf(stores.outbox.stats(), stores.deadLetters) });
    };

    openStores(deps).then(
      (opened) => {
        if (stopped) return void deps.closing.track('outbox', opened.outbox.close());
        stores = opened;
        const { outbox } = opened;
        drainer = new Drainer(outbox, deps.maxInFlight, deps.poison, (seq, reason) => void moveAside(opened, seq, reason, deps));
        const stats = outbox.stats();
        if (stats.recoveredMessages || stats.corruptRegions || stats.tornBytes) {
          deps.log.info({ recovered: stats.recoveredMessages, corruptRegions: stats.corruptRegions, tornBytes: stats.tornBytes }, 'outbox recovered');
        }
        let unwritable = false;
        outbox.on('change', () => {
          const { unwritable: reason, depth } = outbox.stats();
          if (Boolean(reason) !== unwritable) logStorage(deps.log, reason, depth);
          unwritable = Boolean(reason);
          // At most one report per interval, but the first change after a quiet spell at once (a dashboard shows it).
          const interval = deps.statsIntervalMs ?? 250;
          statsTimer ??= setTimeout(sendStats, Math.max(0, statsSentAt + interval - Date.now()));
        });
        deps.outbox.set(outbox);
        deps.deadLetters.set(opened.deadLetters);
        sendBack({ type: 'outbox.opened', counters: countersOf(stats, opened.deadLetters) });
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
      if (stores) {
        deps.outbox.clear(stores.outbox);
        deps.deadLetters.clear(stores.deadLetters);
        deps.closing.track('outbox', stores.outbox.close());
      }
    };
  });
}

/** The disk stopped or started taking writes again: said once each way, not per message. */
function logStorage(log: Logger, reason: string | null, depth: number): void {
  if (reason) log.error({ reason, depth }, 'the disk refuses writes: new messages are refused, held ones still delivered');
  else log.info({ depth }, 'the disk takes writes again: accepting messages');
}

async function moveAside(stores: { outbox: Outbox; deadLetters: DeadLetters }, seq: number, reason: string, deps: OutboxStoreDeps): Promise<void> {
  let letter: { id: string; topic: string } | undefined;
  try {
    const discardedBefore = stores.deadLetters.discarded;
    await stores.outbox.moveAside(seq, async (message) => void (letter = await stores.deadLetters.add(message, reason)));
    if (stores.deadLetters.discarded > discardedBefore) deps.log.warn({ max: deps.maxDeadLetters }, 'dead letters full: the oldest was discarded');
    if (letter) deps.log.warn({ id: letter.id, topic: letter.topic, reason }, 'message moved to the dead letters');
  } catch (error) {
    deps.log.error({ seq, err: String(error) }, 'cannot move a message to the dead letters; it stays queued');
  }
}
