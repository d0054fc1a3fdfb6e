import { timingSafeEqual } from 'node:crypto';
import type { AedesOptions, AedesPublishPacket, AuthenticateError, Client } from 'aedes';
import type { Logger } from '../log.js';
import type { Credentials } from './credentials.js';
import type { PasswordFile } from './password-file.js';
import { mayConnect, mayPublish, maySubscribe, type Reserved, type Role } from './policy.js';
import { RetainedLedger } from './retained-ledger.js';

export interface GateOptions {
  reserved: Reserved;
  agent: Credentials;
  users: PasswordFile | undefined;
  jobsServiceUser: string | undefined;
  allowAnonymous: boolean;
  limits: { maxConnections: number; maxRetainedMessages: number; maxRetainedBytes: number; maxInflight: number };
  log: Logger;
}

type Deliver = (packet: AedesPublishPacket, done: () => void) => void;
/** CONNACK return codes of MQTT 3.1.1 */
const REFUSED = { identifier: 2, unavailable: 3, badCredentials: 4, notAuthorized: 5 } as const;

/**
 * The embedded broker's door: who connects (aedes' authenticate), what each may publish and
 * subscribe (the rules of policy.ts), and the per-client bounds aedes has no option for.
 */
export class BrokerGate {
  private readonly roles = new WeakMap<Client, Role>();
  private readonly others = new Set<Client>();
  private readonly acks = new WeakMap<Client, () => void>();
  readonly retained: RetainedLedger;
  private readonly refusals = new RefusalLog();

  constructor(private readonly options: GateOptions) {
    this.retained = new RetainedLedger({ maxMessages: options.limits.maxRetainedMessages, maxBytes: options.limits.maxRetainedBytes });
  }

  /** The hooks, for Aedes.createBroker. */
  hooks(): Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'> {
    return {
      preConnect: (_client, packet, done) => {
        // Sessions of local clients are not kept: an offline queue in memory has no bound.
        if (packet.username !== this.options.agent.username) packet.clean = true;
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (refusal) => (refusal === undefined ? done(null, true) : done(connackError(refusal.reason, refusal.code), false)),
          (error) => done(connackError(String(error), REFUSED.unavailable), false),
        );
      },
      authorizePublish: (client, packet, done) => {
        const reason = this.refusePublish(client, packet.topic, packet.retain ? Buffer.byteLength(packet.payload) : undefined);
        if (reason === undefined) return done(null);
        this.refusals.note(this.options.log, { clientId: client?.id, topic: packet.topic.slice(0, 200), reason }, 'publish refused; client disconnected');
        done(new Error(reason));
      },
      authorizeSubscribe: (client, subscription, done) => {
        if (maySubscribe(this.role(client), subscription.topic, this.options.reserved)) return done(null, subscription);
        this.refusals.note(this.options.log, { clientId: client.id, filter: subscription.topic.slice(0, 200) }, 'subscription refused');
        done(null, null); // SUBACK 0x80 for this filter; the connection stays
      },
    };
  }

  /** The broker's acknowledgement event: a QoS 1/2 delivery to this client is done. */
  onAck(packet: unknown, client: Client | null): void {
    if (packet && client) this.acks.get(client)?.();
  }

  private role(client: Client | null): Role {
    return (client && this.roles.get(client)) ?? 'user';
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<{ code: number; reason: string } | undefined> {
    const role = await this.identify(username, password ?? Buffer.alloc(0));
    const refusal =
      role === undefined
        ? username === undefined
          ? { code: REFUSED.notAuthorized, reason: 'anonymous clients are not allowed' }
          : { code: REFUSED.badCredentials, reason: 'bad user name or password' }
        : !mayConnect(role, client.id, this.options.reserved)
          ? {
              code: REFUSED.identifier,
              reason: role === 'agent' ? "the agent's user connects only with the agent's client id" : "the agent's client id is reserved",
            }
          : role !== 'agent' && this.others.size >= this.options.limits.maxConnections - 1
            ? { code: REFUSED.unavailable, reason: 'too many connections' }
            : undefined;
    if (refusal) {
      this.refusals.note(
        this.options.log,
        { clientId: client.id.slice(0, 128), username: username?.slice(0, 64), reason: refusal.reason },
        'connection refused',
      );
      return refusal;
    }
    this.roles.set(client, role!);
    if (role !== 'agent') this.admitOther(client);
    return undefined;
  }

  private async identify(username: string | undefined, password: Buffer): Promise<Role | undefined> {
    const { agent, users, allowAnonymous, jobsServiceUser } = this.options;
    if (username === undefined) return allowAnonymous ? 'anonymous' : undefined;
    if (username === agent.username) return equalSecret(password, agent.password) ? 'agent' : undefined;
    if (!users || !(await users.verify(username, password))) return undefined;
    return username === jobsServiceUser ? 'jobsService' : 'user';
  }

  private refusePublish(client: Client | null, topic: string, retainedBytes: number | undefined): string | undefined {
    const role = this.role(client);
    if (!mayPublish(role, topic, this.options.reserved)) return 'topic reserved for the agent';
    if (retainedBytes !== undefined && !this.retained.admit(topic, retainedBytes, role === 'agent')) return 'retained messages full';
    return undefined;
  }

  /** Counts the connection against maxConnections and bounds its QoS 1/2 deliveries in flight. */
  private admitOther(client: Client): void {
    this.others.add(client);
    client.conn.once('close', () => this.others.delete(client));
    const target = client as Client & { deliverQoS?: Deliver };
    const deliver = target.deliverQoS;
    if (!deliver) return;
    let inflight = 0;
    let dropped = 0;
    this.acks.set(client, () => (inflight = Math.max(0, inflight - 1)));
    target.deliverQoS = (packet, done) => {
      if (packet.qos === 0) return deliver(packet, done);
      if (inflight >= this.options.limits.maxInflight) {
        if (dropped++ === 0)
          this.options.log.warn(
            { clientId: client.id, maxInflight: this.options.limits.maxInflight },
            'client acknowledges too slowly; messages to it are dropped',
          );
        return void setImmediate(done);
      }
      inflight++;
      deliver(packet, done);
    };
  }
}

/** The error aedes turns into a CONNACK with this return code. */
function connackError(reason: string, code: number): AuthenticateError {
  return Object.assign(new Error(reason), { returnCode: code }) as AuthenticateError;
}

function equalSecret(given: Buffer, expected: string): boolean {
  const want = Buffer.from(expected);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** Refusals are logged, but a flood of them writes at most one line a second (with a count). */
class RefusalLog {
  private windowStart = 0;
  private suppressed = 0;

  note(log: Logger, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.windowStart < 1000) return void this.suppressed++;
    log.warn({ ...fields, ...(this.suppressed ? { suppressedSinceLast: this.suppressed } : {}) }, message);
    this.windowStart = now;
    this.suppressed = 0;
  }
}
