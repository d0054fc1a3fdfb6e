import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import type { StatusDetails } from './status-details.js';

/** A request the service answered on …/rejected. */
export class JobsRejected extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly executionState?: { status?: string; versionNumber?: number; statusDetails?: StatusDetails },
  ) {
    super(`${code}: ${message}`);
  }
}

export interface ExecutionPayload {
  jobId: string;
  executionNumber: number;
  versionNumber?: number;
  status?: string;
  jobDocument?: unknown;
}

/**
 * The AWS IoT Jobs device API over one MQTT connection: subscribe to every answer topic
 * before asking anything, match answers to requests by clientToken, and pass notify-next on.
 * Events: `ready` (subscribed on a new connection), `notify-next` (its execution, or null).
 */
export class JobsApi extends EventEmitter {
  private client: MqttClient | undefined;
  private readonly prefix: string;
  private readonly pending = new Map<string, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    thingName: string,
    private readonly timeoutMs = 10_000,
  ) {
    super();
    this.prefix = `$aws/things/${thingName}/jobs/`;
  }

  /** A new connection: subscribe, then say ready (the manager asks for work on every one). */
  async attach(client: MqttClient): Promise<void> {
    this.detach();
    this.client = client;
    client.on('message', this.onMessage);
    const p = this.prefix;
    // Answers at QoS 0: an answer is only of use on the connection that asked (a request
    // pending when it drops fails and is asked again), and each QoS 1 delivery would cost the
    // agent a PUBACK write on the job's way. notify-next, the service's own news, stays QoS 1.
    await client.subscribeAsync({ [`${p}notify-next`]: { qos: 1 }, [`${p}+/get/+`]: { qos: 0 }, [`${p}+/update/+`]: { qos: 0 } });
    if (this.client === client) this.emit('ready');
  }

  detach(): void {
    this.client?.off('message', this.onMessage);
    this.client = undefined;
    for (const [token, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('the MQTT connection went away'));
      this.pending.delete(token);
    }
  }

  nextGet() {
    return this.request('$next/get', { includeJobDocument: true }).then((a) => (a.execution ?? null) as ExecutionPayload | null);
  }

  describe(jobId: string, executionNumber?: number) {
    return this.request(`${jobId}/get`, { executionNumber, includeJobDocument: false }).then((a) => a.execution as ExecutionPayload);
  }

  update(jobId: string, body: { status: string; statusDetails?: StatusDetails; executionNumber?: number; includeJobExecutionState?: boolean }) {
    const { statusDetails, ...rest } = body;
    // an empty map is left out rather than sent as {}
    return this.request(`${jobId}/update`, statusDetails && Object.keys(statusDetails).length > 0 ? body : rest);
  }

  private request(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('not connected'));
    const clientToken = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(clientToken);
        reject(new Error(`no answer to ${path} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(clientToken, { resolve, reject, timer });
      client.publish(`${this.prefix}${path}`, JSON.stringify({ ...body, clientToken }), { qos: 1 }, (error) => {
        if (error) this.settle(clientToken, undefined, error);
      });
    });
  }

  private settle(token: string, answer?: Record<string, unknown>, error?: Error): void {
    const p = this.pending.get(token);
    if (!p) return; // an answer to someone else, or too late
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(answer!);
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (!topic.startsWith(this.prefix)) return;
    const rest = topic.slice(this.prefix.length);
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(payload.toString('utf8'));
      if (!message || typeof message !== 'object') return;
    } catch {
      return; // not ours to judge: a malformed answer is as good as none (the request times out)
    }
    if (rest === 'notify-next') return void this.emit('notify-next', (message.execution ?? null) as ExecutionPayload | null);
    const token = typeof message.clientToken === 'string' ? message.clientToken : undefined;
    if (!token) return;
    if (rest.endsWith('/accepted')) this.settle(token, message);
    else if (rest.endsWith('/rejected')) {
      this.settle(
        token,
        undefined,
        new JobsRejected(String(message.code ?? 'Unknown'), String(message.message ?? ''), message.executionState as JobsRejected['executionState']),
      );
    }
  };
}
