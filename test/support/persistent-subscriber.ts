import mqtt from 'mqtt';

/**
 * A subscriber with a persistent session (clean: false, QoS 1), as a cloud consumer would
 * keep one: it reconnects on its own and the broker keeps what arrives meanwhile. Records
 * every delivery, duplicates included.
 */
export async function persistentSubscriber(url: string, topic: string) {
  const client = await mqtt.connectAsync(url, {
    clientId: `persistent-${process.pid}-${Math.random().toString(16).slice(2)}`,
    clean: false,
    reconnectPeriod: 100,
    connectTimeout: 2000,
  });
  const received: Array<{ topic: string; payload: string }> = [];
  client.on('message', (t, payload) => received.push({ topic: t, payload: payload.toString() }));
  client.on('error', () => {}); // the broker goes away on purpose
  await client.subscribeAsync(topic, { qos: 1 });
  return { received, close: () => client.endAsync(true) };
}

/** Per topic: the first arrival of each message in order, and how many arrived again. */
export function analyse(received: Array<{ topic: string; payload: string }>) {
  const firstSeen = new Map<string, number[]>();
  const seen = new Set<string>();
  let duplicates = 0;
  for (const { topic, payload } of received) {
    const key = `${topic}|${payload}`;
    if (seen.has(key)) {
      duplicates++;
      continue;
    }
    seen.add(key);
    const n = Number(JSON.parse(payload).n);
    firstSeen.set(topic, [...(firstSeen.get(topic) ?? []), n]);
  }
  return { firstSeen, duplicates, distinct: seen.size };
}
