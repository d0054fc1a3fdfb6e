import { fromPromise } from 'xstate';
import type { SampleOutput } from '../../../machines/monitor.js';
import type { Logger } from '../../log.js';
import type { History } from '../../monitor/history.js';
import type { MonitorHub } from '../../monitor/hub.js';
import { encodeSample } from '../../monitor/payload.js';
import type { HostSampler } from '../../monitor/sampler.js';
import type { MonitorStats } from '../../monitor/stats.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';

export interface SampleHostPorts {
  thingName: string;
  /** <prefix>/<thingName>/monitoring */
  topic: string;
  sampler: () => Promise<HostSampler>;
  history: Slot<History>;
  outbox: Slot<Outbox>;
  hub: MonitorHub;
  stats: MonitorStats;
  now: () => number;
  log: Logger;
}

/**
 * The `sampleHost` actor: one sample of this host, stored in the history, then published
 * through the outbox (QoS 1, so it survives outages and restarts) and to /ws subscribers.
 * The chart gets only the summary. A sample the outbox refuses (closed, full) is counted
 * and logged; it stays in the local history.
 */
export function sampleHostActor(ports: SampleHostPorts) {
  return fromPromise<SampleOutput, void>(async () => {
    const started = performance.now();
    const sampler = await ports.sampler();
    const ts = ports.now();
    const values = await sampler.sample(ts);
    const history = ports.history.current;
    if (!history) throw Object.assign(new Error('the metric history is not open'), { code: 'history_closed' });
    const sample = { device: ports.thingName, ts, values };
    const stored = history.insert(sample);
    ports.hub.publish(sample);
    const outbox = ports.outbox.current;
    if (outbox) {
      outbox.enqueue({ topic: ports.topic, payload: encodeSample(ports.thingName, ts, values), qos: 1, retain: false }).catch((error) => {
        ports.stats.publishFailures++;
        ports.log.warn({ err: String(error) }, 'sample not queued for publishing');
      });
    } else ports.stats.publishFailures++;
    const durationMs = performance.now() - started;
    ports.stats.samples++;
    ports.stats.lastSampleSeconds = durationMs / 1000;
    ports.stats.sampleSecondsTotal += durationMs / 1000;
    return { at: ts, values: stored, durationMs: Math.round(durationMs * 100) / 100 };
  });
}
