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
    let opened: AlertStore | undefined;
    let queue: Promise<AlertStore | undefined> = ports.store().then(
      (store) => {
        if (stopped) return undefined;
        opened = store;
        deliveries = ports.channels.map(
          (channel, i) =>
            new Delivery({
              channel,
              store,
              retry: ports.retry,
              jitterSeed: ports.jitterSeed + i,
              log: ports.log,
              onStatus: (status) => !stopped && sendBack({ type: 'alerts.delivery', status } satisfies NotifierEvent),
            }),
        );
        for (const d of deliveries) d.kick(); // what a previous run left
        return store;
      },
      (error: unknown) => {
        ports.log.error({ err: String(error) }, 'cannot open the alert store: notices are not kept');
        const failing = { code: 'store', message: `cannot open the alert store: ${String(error)}` };
        for (const { name } of ports.channels)
          sendBack({ type: 'alerts.delivery', status: { channel: name, pending: 0, delivered: 0, dropped: 0, rejected: 0, failing } } satisfies NotifierEvent);
        return undefined;
      },
    );
    receive((command) => {
      // one after the other; a failure of one (a bug) is logged and does not stop the next
      queue = queue
        .then(async (store) => {
          if (store && !stopped) await handle(store, command);
          return store;
        })
        .catch((error: unknown) => {
          ports.log.error({ command: command.type, err: String(error) }, 'alert command failed');
          return opened;
        });
    });
    const handle = async (store: AlertStore, command: NotifierCommand) => {
      if (command.type === 'alerts.state') return store.setState(command.id, command.memory);
      const { notice } = command;
      ports.log.info({ alert: notice.alert, value: notice.value, suppressed: notice.suppressed }, `alert ${notice.kind}`);
      await store.addNotice(notice);
      for (const d of deliveries) d.kick();
    };
    return () => {
      stopped = true;
      for (const d of deliveries) d.stop();
      void queue.then((store) => store?.close());
    };
  });
}
