import { fromCallback } from 'xstate';
import type { NotifierCommand, NotifierEvent } from '../../../machines/alerts.js';
import type { BackoffPolicy } from '../../../machines/shared/backoff.js';
import type { Channel } from '../../alerts/channel.js';
import { Delivery } from '../../alerts/delivery.js';
import type { AlertStore } from '../../alerts/store.js';
import type { Logger } from '../../log.js';

export interface NotifierPorts {
  /** the store, opened once per process (a restarted concern finds what the last one left) */
  store: () => Promise<AlertStore>;
  channels: Channel[];
  retry: BackoffPolicy;
  jitterSeed: number;
  log: Logger;
}

/**
 * The alerts manager's `notifier`: persists each alert state it is told, puts each notice
 * on disk for every channel, and delivers them (one ordered Delivery per channel). Reports
 * each channel's figures back as `alerts.delivery`. Commands are handled one after the
 * other, in the order they came.
 */
export function alertNotifierActor(ports: NotifierPorts) {
  return fromCallback<NotifierCommand, void>(({ sendBack, receive }) => {
    let stopped = false;
    let deliveries: Delivery[] = [];
    let queue: Promise<AlertStore | undefined> = ports.store().then(
      (store) => {
        if (stopped) return undefined;
        deliveries = ports.channels.map((channel, i) => new Delivery({ channel, store, retry: ports.retry, jitterSeed: ports.jitterSeed + i, log: ports.log, onStatus: (status) => !stopped && sendBack({ type: 'alerts.delivery', status } satisfies NotifierEvent) }));
        for (const d of deliveries) d.kick(); // what a previous run left
        return store;
      },
      (error: unknown) => {
        ports.log.error({ err: String(error) }, 'cannot open the alert store: notices are not kept');
        return undefined;
      },
    );
    receive((command) => {
      queue = queue.then(async (store) => {
        if (!store || stopped) return store;
        if (command.type === 'alerts.state') store.setState(command.id, command.memory);
        else {
          ports.log.info({ notice: command.notice.kind, alert: command.notice.alert, value: command.notice.value }, `alert ${command.notice.kind}`);
          await store.addNotice(command.notice);
          for (const d of deliveries) d.kick();
        }
        return store;
      });
    });
    return () => {
      stopped = true;
      for (const d of deliveries) d.stop();
      void queue.then((store) => store?.close());
    };
  });
}
