import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import type { Config } from '../config/schema.js';

export const statusTopic = (thingName: string) => `devices/${thingName}/status`;

/** The broker URL the link dials: the embedded broker's address, or the configured URL. */
export function brokerUrl(config: Config): string {
  if (config.mqtt.url !== 'embedded') return config.mqtt.url;
  const host = config.mqtt.embeddedHost.includes(':') ? `[${config.mqtt.embeddedHost}]` : config.mqtt.embeddedHost;
  return `${config.mqtt.embeddedTls ? 'mqtts' : 'mqtt'}://${host}:${config.mqtt.embeddedPort}`;
}

/** The same URL without credentials, for state views and logs. */
export function publicBrokerUrl(config: Config): string {
  const url = new URL(brokerUrl(config));
  return `${url.protocol}//${url.host}`;
}

/**
 * mqtt.js options for one connection attempt. Reconnection is off: the link chart owns it.
 * The last will marks the thing offline (retained) when the connection drops uncleanly.
 */
export function mqttOptions(config: Config): IClientOptions {
  const { mqtt } = config;
  const tls = mqtt.tls;
  const own = mqtt.url === 'embedded' ? embeddedTlsOptions(config) : undefined;
  return {
    clientId: mqtt.clientId ?? config.thingName,
    username: mqtt.username,
    password: mqtt.password,
    protocolVersion: 4,
    clean: true,
    keepalive: mqtt.keepaliveSeconds,
    connectTimeout: mqtt.connectTimeoutSeconds * 1000,
    reconnectPeriod: 0,
    // mqtt-packet otherwise builds 65,536 two-byte Buffers for packet ids on the first packet:
    // about 60 ms of start-up and several MiB of heap, for no gain at an edge agent's rates
    writeCache: false,
    ca: tls.ca ? readFileSync(tls.ca) : undefined,
    cert: tls.cert ? readFileSync(tls.cert) : undefined,
    key: tls.key ? readFileSync(tls.key) : undefined,
    rejectUnauthorized: tls.rejectUnauthorized,
    will: { topic: statusTopic(config.thingName), payload: Buffer.from('offline'), qos: 1, retain: true },
    ...own,
  };
}

/**
 * The agent dials its own embedded broker: over TLS it trusts the broker's CA (or its
 * self-signed certificate) and skips the host name check, since it reaches its own listener
 * by whatever address embeddedHost is (0.0.0.0, an interface address). Username and password
 * come from the generated credentials, not from mqtt.username/password.
 */
function embeddedTlsOptions(config: Config): IClientOptions {
  const tls = config.mqtt.embeddedTls;
  if (!tls) return { ca: undefined, cert: undefined, key: undefined };
  // mqtt.js hands its options to tls.connect, which reads checkServerIdentity
  const options: IClientOptions & Pick<ConnectionOptions, 'checkServerIdentity'> = {
    ca: readFileSync(tls.ca ?? tls.cert),
    cert: undefined,
    key: undefined,
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  };
  return options;
}
