/**
 * Who may do what on the embedded broker. Pure rules, no I/O: the agent may do anything (it
 * publishes what local applications queue in its outbox); nobody else may use its client id,
 * publish its status, or publish to or subscribe from its `$aws/things/<thing>/…` topics, where
 * a fake notify-next would make it run programs. The one exception is a user the operator names
 * as the local AWS IoT Jobs service, which may use `$aws/things/<thing>/jobs/…`.
 */

export type Role = 'agent' | 'jobsService' | 'user' | 'anonymous';

export interface Reserved {
  /** the agent's client id */
  clientId: string;
  /** devices/<thing>/status */
  statusTopic: string;
  /** $aws/things/<thing>/ */
  thingPrefix: string;
}

export function reservedFor(thingName: string, clientId: string): Reserved {
  return { clientId, statusTopic: `devices/${thingName}/status`, thingPrefix: `$aws/things/${thingName}/` };
}

/** A connection's identity check: the agent's id only with the agent's user, and the reverse. */
export function mayConnect(role: Role, clientId: string, reserved: Reserved): boolean {
  return (role === 'agent') === (clientId === reserved.clientId);
}

export function mayPublish(role: Role, topic: string, reserved: Reserved): boolean {
  if (role === 'agent') return true;
  if (topic.startsWith('$SYS/') || topic === reserved.statusTopic) return false;
  if (!topic.startsWith(reserved.thingPrefix)) return true;
  return role === 'jobsService' && topic.startsWith(`${reserved.thingPrefix}jobs/`);
}

export function maySubscribe(role: Role, filter: string, reserved: Reserved): boolean {
  if (role === 'agent' || role === 'jobsService') return true;
  return !filtersOverlap(filter, `${reserved.thingPrefix}#`);
}

/** True when some topic matches both filters (`+` one level, `#` the rest; a wildcard first
 * level never matches a `$` topic, MQTT-4.7.2-1). */
export function filtersOverlap(a: string, b: string): boolean {
  const [x, y] = [a.split('/'), b.split('/')];
  if ((isWild(x[0]) && y[0]!.startsWith('$')) || (isWild(y[0]) && x[0]!.startsWith('$'))) return false;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const [p, q] = [x[i], y[i]];
    if (p === '#' || q === '#') return true;
    if (p === undefined || q === undefined) return false;
    if (p !== '+' && q !== '+' && p !== q) return false;
  }
  return true;
}

const isWild = (level: string | undefined) => level === '+' || level === '#';
