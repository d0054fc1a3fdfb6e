import type { MqttClient } from 'mqtt';
import { fromCallback } from 'xstate';
import type { JobsFeedEvent } from '../../../machines/jobs.js';
import type { ExecutionPayload } from '../../jobs/api.js';
import type { JobsPorts } from './ports.js';

const JOB_ID = /^[a-zA-Z0-9_-]{1,64}$/;

/** The execution a notify-next carries whole (AWS's do), or undefined when it carries less. */
export function offeredBy(e: ExecutionPayload) {
  const whole = typeof e.jobId === 'string' && JOB_ID.test(e.jobId) && Number.isInteger(e.executionNumber) && e.jobDocument !== undefined;
  return whole ? { jobId: e.jobId, executionNumber: e.executionNumber, versionNumber: e.versionNumber, jobDocument: e.jobDocument } : undefined;
}

/**
 * The `jobsFeed` actor: follows the MQTT session, attaches the Jobs API to each new connection
 * and tells the chart what the API hears (ready, notify-next, offline). On stop it detaches,
 * and the finished job records go to jobs.json now rather than a second later.
 */
export function jobsFeedActor(ports: Pick<JobsPorts, 'session' | 'api' | 'store' | 'log'>) {
  const { api, log } = ports;
  return fromCallback<JobsFeedEvent, void>(({ sendBack }) => {
    const onReady = () => sendBack({ type: 'jobs.ready' });
    const onNotify = (e: ExecutionPayload | null) =>
      sendBack({ type: 'jobs.notified', execution: e ? { jobId: e.jobId, executionNumber: e.executionNumber } : null, offered: e ? offeredBy(e) : undefined });
    api.on('ready', onReady);
    api.on('notify-next', onNotify);
    const follow = (client: MqttClient | undefined) => {
      if (!client) {
        api.detach();
        return sendBack({ type: 'jobs.offline' });
      }
      api.attach(client).catch((error) => log.warn({ err: String(error) }, 'cannot subscribe to the jobs topics'));
    };
    const unsubscribe = ports.session.subscribe(follow);
    if (ports.session.current) follow(ports.session.current);
    return () => {
      unsubscribe();
      api.off('ready', onReady);
      api.off('notify-next', onNotify);
      api.detach();
      void ports.store.flush().catch(() => {});
    };
  });
}
