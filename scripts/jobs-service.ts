/**
 * A local AWS IoT Jobs service: the device side of the Jobs MQTT API over any broker, with
 * accepted/rejected answers, versions, execution numbers, the statusDetails limits and the
 * terminal-state rules of ../shared/specs/jobs-protocol.md. For trying jobs by hand and for
 * the tests.
 *
 *   npx tsx scripts/jobs-service.ts --broker mqtt://127.0.0.1:1883
 *   npx tsx scripts/submit-job.ts --broker … --thing edgevisor --job-id hello --document job.json
 *
 * Jobs are created by publishing {thingName, jobId, document, timeoutConfig?} to
 * edgevisor-jobs-service/create (and {thingName, jobId} to …/cancel).
 *
 * Service-side timeouts as AWS runs them (spec §5): the job's
 * timeoutConfig.inProgressTimeoutInMinutes starts when the execution goes IN_PROGRESS; a
 * stepTimeoutInMinutes on start-next or on an IN_PROGRESS update replaces the step timer (an
 * update without one leaves it running) and never reaches past the in-progress timer. On expiry
 * the execution goes TIMED_OUT, notify-next moves on, and a later update is refused
 * InvalidStateTransition. `minuteMs` (option of start(), `--minute-ms` here) shortens the
 * minute these timers count in, for tests and for trying timeouts by hand; 60,000 otherwise.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { checkStatusDetails, type StatusDetails } from '../src/jobs/status-details.js';

export const CONTROL_PREFIX = 'edgevisor-jobs-service';

type Status = 'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'REJECTED' | 'REMOVED' | 'CANCELED';
const TERMINAL: Status[] = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED', 'REMOVED', 'CANCELED'];
const DEVICE_STATUSES = ['IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'REJECTED'];
/** stepTimeoutInMinutes and inProgressTimeoutInMinutes: 1 minute to 7 days [spec §4] */
const MAX_TIMEOUT_MINUTES = 10_080;

export interface TimeoutConfig {
  inProgressTimeoutInMinutes?: number;
}

export interface ServiceOptions {
  /** TEST/TRYING ONLY: milliseconds in one of the timers' minutes (default 60,000) */
  minuteMs?: number;
}

export interface ServiceExecution {
  jobId: string;
  thingName: string;
  executionNumber: number;
  status: Status;
  statusDetails?: StatusDetails;
  versionNumber: number;
  queuedAt: number;
  startedAt?: number;
  lastUpdatedAt: number;
  jobDocument: unknown;
  timeoutConfig?: TimeoutConfig;
  /** epoch ms when the in-progress and the step timer run out */
  inProgressDeadline?: number;
  stepDeadline?: number;
  /** every update the device sent, accepted or not, for the tests */
  updates: Array<{ status: unknown; statusDetails?: unknown; accepted: boolean; code?: string }>;
}

const now = () => Math.floor(Date.now() / 1000);
const isTerminal = (e: ServiceExecution) => TERMINAL.includes(e.status);
const validMinutes = (v: unknown) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_TIMEOUT_MINUTES;

export class LocalJobsService {
  private readonly executions: ServiceExecution[] = [];
  private readonly heads = new Map<string, string>();
  /** requests of every kind, in arrival order, for the tests */
  readonly requests: Array<{ thingName: string; api: string }> = [];
  /** tests: apply updates but lose the answers (as a dropped connection would) */
  loseUpdateAnswers = false;
  /** tests: ignore terminal updates altogether (no answer, no change) */
  ignoreTerminalUpdates = false;
  private readonly updateListeners = new Set<(execution: ServiceExecution) => void>();
  private readonly timers = new Map<ServiceExecution, NodeJS.Timeout>();
  private readonly minuteMs: number;

  private constructor(
    private readonly client: MqttClient,
    options: ServiceOptions,
  ) {
    this.minuteMs = options.minuteMs ?? 60_000;
  }

  static async start(url: string, options: ServiceOptions = {}): Promise<LocalJobsService> {
    const client = await mqtt.connectAsync(url, { clientId: `jobs-service-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 500 });
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    client.on('connect', () => (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
    const service = new LocalJobsService(client, options);
    client.on('message', (topic, payload) => service.onMessage(topic, payload));
    await client.subscribeAsync(['$aws/things/+/jobs/#', `${CONTROL_PREFIX}/#`], { qos: 1 });
    return service;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.client.endAsync();
  }

  /** Queues a new execution; a jobId seen before on this thing gets the next execution number (a retry). */
  createJob(thingName: string, jobId: string, jobDocument: unknown, options: { timeoutConfig?: TimeoutConfig } = {}): ServiceExecution {
    const minutes = options.timeoutConfig?.inProgressTimeoutInMinutes;
    if (minutes !== undefined && !validMinutes(minutes)) throw new Error(`inProgressTimeoutInMinutes must be an integer 1..${MAX_TIMEOUT_MINUTES}`);
    const previous = this.executions.filter((e) => e.thingName === thingName && e.jobId === jobId);
    const execution: ServiceExecution = {
      jobId,
      thingName,
      executionNumber: previous.length + 1,
      status: 'QUEUED',
      versionNumber: 1,
      queuedAt: now(),
      lastUpdatedAt: now(),
      jobDocument,
      timeoutConfig: options.timeoutConfig,
      updates: [],
    };
    this.executions.push(execution);
    this.announce(thingName);
    return execution;
  }

  /** The service ends an execution on its own (operator cancel, in-progress timer). */
  end(thingName: string, jobId: string, status: 'CANCELED' | 'TIMED_OUT' | 'REMOVED' = 'CANCELED'): void {
    const execution = this.latest(thingName, jobId);
    if (execution) this.endExecution(execution, status);
  }

  private endExecution(execution: ServiceExecution, status: 'CANCELED' | 'TIMED_OUT' | 'REMOVED'): void {
    if (isTerminal(execution)) return;
    execution.status = status;
    execution.versionNumber++;
    execution.lastUpdatedAt = now();
    this.disarm(execution);
    this.announce(execution.thingName);
  }

  /** Starts the in-progress timer (on the way to IN_PROGRESS) and/or replaces the step timer. */
  private arm(execution: ServiceExecution, startsNow: boolean, stepMinutes: number | undefined): void {
    const at = Date.now();
    const inProgress = execution.timeoutConfig?.inProgressTimeoutInMinutes;
    if (startsNow && inProgress !== undefined) execution.inProgressDeadline = at + inProgress * this.minuteMs;
    if (stepMinutes !== undefined) execution.stepDeadline = at + stepMinutes * this.minuteMs;
    const deadline = Math.min(execution.inProgressDeadline ?? Infinity, execution.stepDeadline ?? Infinity);
    if (deadline === Infinity) return;
    clearTimeout(this.timers.get(execution));
    this.timers.set(
      execution,
      setTimeout(() => this.endExecution(execution, 'TIMED_OUT'), Math.max(0, deadline - at)),
    );
  }

  private disarm(execution: ServiceExecution): void {
    clearTimeout(this.timers.get(execution));
    this.timers.delete(execution);
    execution.inProgressDeadline = execution.stepDeadline = undefined;
  }

  /** Sends the current notify-next again, as a QoS 1 redelivery would. */
  renotify(thingName: string): void {
    this.publish(`$aws/things/${thingName}/jobs/notify-next`, this.notifyPayload(thingName));
  }

  /** Calls `listener` after each update the service takes (for waiting without polling); returns the unsubscribe. */
  onUpdate(listener: (execution: ServiceExecution) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  execution(thingName: string, jobId: string, executionNumber?: number): ServiceExecution | undefined {
    return executionNumber === undefined
      ? this.latest(thingName, jobId)
      : this.executions.find((e) => e.thingName === thingName && e.jobId === jobId && e.executionNumber === executionNumber);
  }

  private latest(thingName: string, jobId: string): ServiceExecution | undefined {
    return this.executions.filter((e) => e.thingName === thingName && e.jobId === jobId).at(-1);
  }

  /** Pending executions: IN_PROGRESS first, then QUEUED, each in creation order. */
  private pending(thingName: string): ServiceExecution[] {
    const mine = this.executions.filter((e) => e.thingName === thingName && !isTerminal(e));
    return [...mine.filter((e) => e.status === 'IN_PROGRESS'), ...mine.filter((e) => e.status === 'QUEUED')];
  }

  private notifyPayload(thingName: string) {
    const head = this.pending(thingName)[0];
    return head ? { timestamp: now(), execution: this.view(head, true) } : { timestamp: now() };
  }

  /** notify-next goes out only when the head of the pending list changes. */
  private announce(thingName: string): void {
    const head = this.pending(thingName)[0];
    const id = head ? `${head.jobId}#${head.executionNumber}` : '';
    if (this.heads.get(thingName) === id) return;
    this.heads.set(thingName, id);
    this.renotify(thingName);
  }

  private view(e: ServiceExecution, withDocument: boolean) {
    return {
      jobId: e.jobId,
      thingName: e.thingName,
      status: e.status,
      statusDetails: e.statusDetails,
      queuedAt: e.queuedAt,
      startedAt: e.startedAt,
      lastUpdatedAt: e.lastUpdatedAt,
      versionNumber: e.versionNumber,
      executionNumber: e.executionNumber,
      ...(this.timers.has(e) ? { approximateSecondsBeforeTimedOut: this.secondsLeft(e) } : {}),
      ...(withDocument ? { jobDocument: e.jobDocument } : {}),
    };
  }

  /** In the service's own seconds: a shortened minute (minuteMs) scales them too. */
  private secondsLeft(e: ServiceExecution): number {
    const deadline = Math.min(e.inProgressDeadline ?? Infinity, e.stepDeadline ?? Infinity);
    return Math.max(0, Math.round(((deadline - Date.now()) / this.minuteMs) * 60));
  }

  private publish(topic: string, payload: unknown): void {
    this.client.publish(topic, JSON.stringify(payload), { qos: 1 });
  }

  private onMessage(topic: string, raw: Buffer): void {
    if (topic.startsWith(`${CONTROL_PREFIX}/`)) return this.onControl(topic.slice(CONTROL_PREFIX.length + 1), raw);
    const match = /^\$aws\/things\/([^/]+)\/jobs\/(.+)$/.exec(topic);
    if (!match) return;
    const [, thingName, api] = match;
    if (/\/(accepted|rejected)$/.test(api) || api === 'notify-next' || api === 'notify') return; // our own answers
    this.requests.push({ thingName, api });
    const reply = (suffix: 'accepted' | 'rejected', body: Record<string, unknown>) => this.publish(`${topic}/${suffix}`, { ...body, timestamp: now() });
    let request: Record<string, unknown>;
    try {
      request = JSON.parse(raw.toString('utf8'));
      if (!request || typeof request !== 'object' || Array.isArray(request)) throw new Error('not an object');
    } catch {
      return reply('rejected', { code: 'InvalidJson', message: 'payload is not a JSON object' });
    }
    const clientToken = request.clientToken;
    const accept = (body: Record<string, unknown> = {}) => reply('accepted', { ...body, clientToken });
    const reject = (code: string, message: string, e?: ServiceExecution) =>
      reply('rejected', {
        code,
        message,
        clientToken,
        ...(e ? { executionState: { status: e.status, statusDetails: e.statusDetails, versionNumber: e.versionNumber } } : {}),
      });

    if (api === 'get') {
      const pending = this.pending(thingName);
      return accept({
        inProgressJobs: pending.filter((e) => e.status === 'IN_PROGRESS').map((e) => this.view(e, false)),
        queuedJobs: pending.filter((e) => e.status === 'QUEUED').map((e) => this.view(e, false)),
      });
    }
    if (api === 'start-next') {
      const head = this.pending(thingName)[0];
      if (!head) return accept();
      const details = request.statusDetails;
      const problem = checkStatusDetails(details) ?? this.checkStepTimeout(request.stepTimeoutInMinutes);
      if (problem) return reject('InvalidRequest', problem);
      if (head.status === 'QUEUED') {
        head.status = 'IN_PROGRESS';
        head.startedAt = now();
        head.statusDetails = details as StatusDetails | undefined;
        head.versionNumber++;
        head.lastUpdatedAt = now();
        this.arm(head, true, request.stepTimeoutInMinutes as number | undefined);
      }
      return accept({ execution: this.view(head, true) });
    }
    if (api === '$next/get') {
      const head = this.pending(thingName)[0];
      return accept(head ? { execution: this.view(head, request.includeJobDocument !== false) } : {});
    }
    const jobApi = /^([a-zA-Z0-9_-]{1,64})\/(get|update)$/.exec(api);
    if (!jobApi) return reject('InvalidTopic', `no API at ${api}`);
    const [, jobId, verb] = jobApi;
    if (verb === 'update' && this.ignoreTerminalUpdates && TERMINAL.includes(request.status as Status)) return;
    const executionNumber = typeof request.executionNumber === 'number' ? request.executionNumber : undefined;
    const execution = this.execution(thingName, jobId, executionNumber);
    if (!execution) return reject('ResourceNotFound', `no execution of ${jobId} on ${thingName}`);
    if (verb === 'get') {
      if (isTerminal(execution)) return reject('TerminalStateReached', `${jobId} is ${execution.status}`);
      return accept({ execution: this.view(execution, request.includeJobDocument !== false) });
    }
    const record = (accepted: boolean, code?: string) =>
      execution.updates.push({ status: request.status, statusDetails: request.statusDetails, accepted, code });
    if (typeof request.status !== 'string' || !DEVICE_STATUSES.includes(request.status)) {
      record(false, 'InvalidRequest');
      return reject('InvalidRequest', `status must be one of ${DEVICE_STATUSES.join(', ')}`);
    }
    // (a step timeout on a terminal update has nothing left to time: it is checked, then moot)
    const problem = checkStatusDetails(request.statusDetails) ?? this.checkStepTimeout(request.stepTimeoutInMinutes);
    if (problem) {
      record(false, 'InvalidRequest');
      return reject('InvalidRequest', problem);
    }
    if (isTerminal(execution)) {
      record(false, 'InvalidStateTransition');
      return reject('InvalidStateTransition', `${jobId} is already ${execution.status}`, execution);
    }
    if (request.expectedVersion !== undefined && Number(request.expectedVersion) !== execution.versionNumber) {
      record(false, 'VersionMismatch');
      return reject('VersionMismatch', `version is ${execution.versionNumber}`, execution);
    }
    record(true);
    const starts = execution.status === 'QUEUED' && request.status === 'IN_PROGRESS';
    if (starts) execution.startedAt = now();
    execution.status = request.status as Status;
    if (isTerminal(execution)) this.disarm(execution);
    else this.arm(execution, starts, request.stepTimeoutInMinutes as number | undefined);
    execution.statusDetails = request.statusDetails as StatusDetails | undefined;
    execution.versionNumber++;
    execution.lastUpdatedAt = now();
    for (const listener of this.updateListeners) listener(execution);
    if (this.loseUpdateAnswers && TERMINAL.includes(execution.status)) return this.announce(thingName);
    accept(
      request.includeJobExecutionState
        ? { executionState: { status: execution.status, statusDetails: execution.statusDetails, versionNumber: execution.versionNumber } }
        : {},
    );
    this.announce(thingName);
  }

  private checkStepTimeout(minutes: unknown): string | undefined {
    return minutes === undefined || validMinutes(minutes) ? undefined : `stepTimeoutInMinutes must be an integer 1..${MAX_TIMEOUT_MINUTES}`;
  }

  private onControl(command: string, raw: Buffer): void {
    try {
      const body = JSON.parse(raw.toString('utf8')) as { thingName: string; jobId: string; document?: unknown; timeoutConfig?: TimeoutConfig };
      if (command === 'create') this.createJob(body.thingName, body.jobId, body.document, { timeoutConfig: body.timeoutConfig });
      if (command === 'cancel') this.end(body.thingName, body.jobId, 'CANCELED');
    } catch {
      // a bad control message is ignored
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { broker: { type: 'string', default: 'mqtt://127.0.0.1:1883' }, 'minute-ms': { type: 'string' } } });
  const minuteMs = values['minute-ms'] === undefined ? undefined : Number(values['minute-ms']);
  if (minuteMs !== undefined && !(minuteMs > 0)) throw new Error('--minute-ms must be a positive number of milliseconds');
  const service = await LocalJobsService.start(values.broker!, { minuteMs });
  console.log(`local AWS IoT Jobs service on ${values.broker}; create jobs on ${CONTROL_PREFIX}/create`);
  process.on('SIGINT', () => void service.stop().then(() => process.exit(0)));
}
