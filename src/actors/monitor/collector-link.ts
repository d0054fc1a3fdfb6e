import type { Socket } from 'node:net';
import mqtt, { type IClientOptions } from 'mqtt';
import type { Logger } from '../../log.js';
import type { CollectorConnection } from '../../monitor/collector-plan.js';
import type { Store } from '../../monitor/collector-route.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
import type { LogOnce } from '../../monitor/log-once.js';
import type { MonitorStats } from '../../monitor/stats.js';
import type { Slot } from '../../slot.js';

export interface LinkStatus {
  state: 'waiting' | 'subscribed';
  problem: string | null;
}

export interface CollectorLinkPorts {
  url: string;
  options: IClientOptions;
  connection: CollectorConnection;
  /** 'drain': a retired connection; it unsubscribes and stores only what its session still holds */
  mode: 'collect' | 'drain';
  route: (topic: string, payload: Buffer) => Store | undefined;
  writer: Slot<HistoryWriter>;
  stats: MonitorStats;
  logOnce: LogOnce;
  log: Logger;
  onStatus: (status: LinkStatus) => void;
}

/** A commit that failed is tried again this often, with the message still unacknowledged. */
const RETRY_MS = 1000;

/**
 * One collector connection with a persistent session. mqtt.js's documented `handleMessage`
 * hook takes one message at a time and sends a QoS 1 message's PUBACK only when its callback
 * is called: the callback is called once the sample is committed, so nothing the broker counts
 * as delivered can be lost by a crash. A commit that fails (disk full, history closed) is
 * tried again every second, the broker holding what follows; if the connection drops
 * meanwhile, the attempt is given up and the broker sends the message again on the session.
 */
export interface CollectorLink {
  /** resolves once connected (and, draining, unsubscribed) and no message came for `ms` */
  quiet: (ms: number) => Promise<void>;
  close: () => Promise<void>;
}

export function openCollectorLink(ports: CollectorLinkPorts): CollectorLink {
  const { connection, log } = ports;
  let generation = 0; // moves on when the connection drops: older attempts stop
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let subscribed = false;
  let stalled = false; // a commit is failing: the state says so until one goes through
  let lastMessageAt = Date.now();
  const status = (state: LinkStatus['state'], problem: string | null) => ports.onStatus({ state, problem });

  const client = mqtt.connect(ports.url, { ...ports.options, clientId: connection.clientId, clean: false, will: undefined, reconnectPeriod: 1000 });

  const store = (job: Store, done: () => void, attemptOf: number) => {
    if (closed || attemptOf !== generation) return;
    const writer = ports.writer.current;
    const committed = writer ? job.commit(writer) : Promise.reject(new Error('the metric history is not open'));
    committed.then(
      () => {
        if (closed || attemptOf !== generation) return;
        if (stalled && subscribed) status('subscribed', null);
        stalled = false;
        done();
      },
      (error: unknown) => {
        ports.stats.collectorStoreFailures++;
        if (ports.logOnce.allows('\0store'))
          log.error(
            { device: job.device, err: String(error) },
            'collected sample not stored: not acknowledged, tried again every second (logged once a minute)',
          );
        if (!stalled) status('waiting', `samples not stored: ${String(error)}`);
        stalled = true;
        retry = setTimeout(() => store(job, done, attemptOf), RETRY_MS);
      },
    );
  };

  client.handleMessage = (packet, done) => {
    lastMessageAt = Date.now();
    const job = ports.route(packet.topic, packet.payload as Buffer);
    if (!job) return done();
    store(job, () => done(), generation);
  };

  status('waiting', 'connecting');
  client.on('connect', (connack) => {
    (client.stream as Socket).setNoDelay?.(true);
    const { topics, clientId } = connection;
    const done = (verb: string) => (error?: Error | null) => {
      if (error) return status('waiting', `${verb} ${topics.join(', ')}: ${error.message}`);
      if (!connack.sessionPresent || ports.mode === 'drain')
        log.info({ topics, clientId }, ports.mode === 'drain' ? 'draining a retired collector session' : 'collecting');
      subscribed = true;
      status('subscribed', null);
    };
    // Every time, session or not: a session kept from an older version may lack a topic.
    if (ports.mode === 'collect') client.subscribe(topics, { qos: 1 }, done('subscribe'));
    else client.unsubscribe(topics, done('unsubscribe'));
  });
  client.on('error', (error) => log.warn({ err: error.message, clientId: connection.clientId }, 'collector connection error'));
  client.on('close', () => {
    generation++;
    subscribed = false;
    clearTimeout(retry);
    status('waiting', 'disconnected');
  });

  return {
    quiet: (ms) =>
      new Promise((resolve) => {
        const check = () => (subscribed && Date.now() - lastMessageAt >= ms ? resolve() : setTimeout(check, 100).unref());
        check();
      }),
    close: () => {
      closed = true;
      clearTimeout(retry);
      client.removeAllListeners('close');
      client.on('error', () => {});
      return client.endAsync(false).catch(() => client.endAsync(true));
    },
  };
}
