/** One MQTT connection of the collector: its client id (with a persistent session) and what it subscribes to. */
export interface CollectorConnection {
  clientId: string;
  topics: string[];
}

export interface CollectorShape {
  /** the agent's client id; the collector's ids derive from it */
  baseId: string;
  topicPrefix: string;
  connections: number;
  /** whether the broker supports `$share/` subscriptions (mosquitto, EMQX, AWS IoT do; the embedded broker does not) */
  shared: boolean;
}

/**
 * The collector's connections. mqtt.js hands a connection's messages over one at a time and
 * acknowledges each only once it is committed, so one connection stores one sample per commit
 * round trip; several connections in one shared subscription group let the broker spread the
 * fleet's samples over them, and their commits share the writer thread's group commit.
 * Inventories are retained, and a broker does not send retained messages to a shared
 * subscription: the first connection subscribes to them plainly.
 */
export function collectorPlan(shape: CollectorShape): CollectorConnection[] {
  const monitoring = `${shape.topicPrefix}/+/monitoring`;
  const inventory = `${shape.topicPrefix}/+/inventory`;
  const base = `${shape.baseId}-collector`;
  if (!shape.shared || shape.connections <= 1) return [{ clientId: base, topics: [monitoring, inventory] }];
  // A group name may not hold '/', '+' or '#'.
  const group = `$share/${base.replace(/[^A-Za-z0-9_-]/g, '_')}/${monitoring}`;
  return Array.from({ length: shape.connections }, (_, i) => ({ clientId: `${base}-${i + 1}`, topics: i === 0 ? [group, inventory] : [group] }));
}

/**
 * Connections an earlier shape left on the broker that this one no longer uses: each has a
 * persistent session holding a subscription the broker queues samples for. With no record
 * (the first start of this version), the single connection earlier versions used.
 */
export function retiredConnections(previous: CollectorConnection[] | undefined, inUse: CollectorConnection[], shape: CollectorShape): CollectorConnection[] {
  const current = new Set(inUse.map((c) => c.clientId));
  const before = previous ?? collectorPlan({ ...shape, connections: 1 });
  return before.filter((c) => !current.has(c.clientId));
}
