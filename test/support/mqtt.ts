import mqtt, { type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A plain mqtt.js subscriber that collects what arrives. */
export async function subscriber(url: string, topic: string): Promise<{ messages: Received[]; client: MqttClient; close: () => Promise<void> }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, clientId: `test-sub-${process.pid}-${Math.random().toString(16).slice(2)}` });
  const messages: Received[] = [];
  client.on('message', (t, payload, packet) => messages.push({ topic: t, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(topic, { qos: 1 });
  return { messages, client, close: () => client.endAsync(true) };
}
