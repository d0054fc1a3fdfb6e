import { randomInt } from 'node:crypto';
import type { BackoffPolicy } from '../../../machines/shared/backoff.js';
import { alertNotifierActor } from './notifier.js';
import { restoreAlertsActor } from './restore.js';
import type { Logger } from '../../log.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';
import type { Channel } from '../../alerts/channel.js';
import { mqttChannel } from '../../alerts/mqtt.js';
import { slackChannel } from '../../alerts/slack.js';
import { AlertStore } from '../../alerts/store.js';

export interface AlertsDeps {
  stateDir: string;
  thingName: string;
  /** monitor.topicPrefix (default "devices"): notices go to <prefix>/<thingName>/alerts */
  topicPrefix?: string;
  slackWebhookUrl?: string;
  slackMaxPending?: number;
  outbox: Slot<Outbox>;
  log: Logger;
  /** delay between delivery tries; default 1 s doubling to 5 min */
  retry?: BackoffPolicy;
  /** a seam for tests */
  fetch?: typeof fetch;
}

/** The real actors of the alerts manager (`notifier`, `restoreAlerts`) over one store in stateDir. */
export function alertsActors(deps: AlertsDeps) {
  const channels: Channel[] = [mqttChannel({ outbox: deps.outbox, topic: `${deps.topicPrefix ?? 'devices'}/${deps.thingName}/alerts` })];
  if (deps.slackWebhookUrl) channels.push(slackChannel({ webhookUrl: deps.slackWebhookUrl, source: deps.thingName, fetch: deps.fetch }));
  let opened: Promise<AlertStore> | undefined;
  const store = () =>
    (opened ??= AlertStore.open(deps.stateDir, {
      channels: channels.map((c) => c.name),
      maxPending: deps.slackMaxPending ?? 10_000,
      warn: (what, fields) => deps.log.warn(fields, what),
    }));
  return {
    actors: {
      notifier: alertNotifierActor({ store, channels, retry: deps.retry ?? { minMs: 1000, maxMs: 300_000 }, jitterSeed: randomInt(2 ** 31), log: deps.log }),
      restoreAlerts: restoreAlertsActor({ store }),
    },
    store,
  };
}
