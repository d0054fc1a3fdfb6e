import type { Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { LinkEvent } from '../../machines/link.js';
import { toFailure, type Failure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Logger } from '../log.js';
import type { Slot } from '../slot.js';

export interface MqttClientDeps {
  url: string;
  options: IClientOptions;
  /** the agent's generated user on the embedded broker, read at each attempt */
  credentials?: () => { username: string; password: string };
  /** devices/<thing>/status: "online" on connect, "offline" on a clean end (and as the will) */
  statusTopic: string;
  /** holds the client while it is connected, for the data plane (the outbox) */
  session: Slot<MqttClient>;
  closing: Closing;
  log: Logger;
  /** how long a clean end may wait for the offline status to be acknowledged */
  endTimeoutMs?: number;
}

/**
 * One MQTT connection attempt (the `mqttClient` actor of the link chart). Reports
 * `mqtt.connected` and `mqtt.closed`; its cleanup publishes the offline status and ends the
 * connection, which the process waits for through `closing`.
 */
export function mqttClientActor(deps: MqttClientDeps) {
  return fromCallback<LinkEvent, { attempt: number }>(({ sendBack, input }) => {
    const client = mqtt.connect(deps.url, { ...deps.options, ...deps.credentials?.() });
    let lastError: Failure | undefined;
    let connected = false;

    client.on('connect', () => {
      connected = true;
      // Nagle on a request/acknowledge protocol costs ~40 ms per round trip.
      (client.stream as Socket).setNoDelay?.(true);
      client.publish(deps.statusTopic, 'online', { qos: 1, retain: true });
      deps.session.set(client);
      deps.log.info({ broker: deps.url.replace(/\/\/[^@/]*@/, '//'), attempt: input.attempt }, 'connected');
      sendBack({ type: 'mqtt.connected', at: Date.now() });
    });
    client.on('error', (error) => {
      lastError = describeMqttError(error);
      deps.log.warn({ code: lastError.code, err: lastError.message }, 'connection error');
    });
    client.on('close', () => {
      deps.session.clear(client);
      if (connected) deps.log.warn('connection closed');
      connected = false;
      sendBack({ type: 'mqtt.closed', error: lastError });
    });

    return () => {
      deps.session.clear(client);
      client.removeAllListeners('close');
      client.removeAllListeners('connect');
      client.on('error', () => {}); // late errors during the end are expected
      deps.closing.track('mqtt', endCleanly(client, connected, deps));
    };
  });
}

async function endCleanly(client: MqttClient, connected: boolean, deps: MqttClientDeps): Promise<void> {
  if (connected && client.connected) {
    const acknowledged = client.publishAsync(deps.statusTopic, 'offline', { qos: 1, retain: true });
    await withTimeout(acknowledged, deps.endTimeoutMs ?? 2000);
    await withTimeout(client.endAsync(false), deps.endTimeoutMs ?? 2000);
    deps.log.info('disconnected');
  }
  if (!client.disconnected) await withTimeout(client.endAsync(true), deps.endTimeoutMs ?? 2000);
}

function describeMqttError(error: Error & { code?: string | number }): Failure {
  const failure = toFailure(error, 'mqtt_error');
  // CONNACK refusals carry a numeric code (5 = not authorized, 135 in MQTT 5)
  if (typeof error.code === 'number') failure.code = `connack_${error.code}`;
  return failure;
}

const withTimeout = (work: Promise<unknown>, ms: number) =>
  Promise.race([work, new Promise((resolve) => setTimeout(resolve, ms).unref())]).catch(() => undefined);
