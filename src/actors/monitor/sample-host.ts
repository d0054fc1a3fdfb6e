import { fromPromise } from 'xstate';
import type { SampleOutput } from '../../../machines/monitor.js';
import type { Logger } from '../../log.js';
import type { HistoryWriter } from '../../monitor/history-writer.js';
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
  /** the history's writer thread */
  writer: Slot<HistoryWriter>;
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
 * and logged; it stays in the local history. The SQLite work runs on the writer thread, so
 * what this costs the event loop is the reads' callbacks, the parsing and one message to it.
 */
export function sampleHostActor(ports: SampleHostPorts) {
  return fromPromise<SampleOutput, void>(async () => {
    const started = performance.now();
    const sampler = await ports.sampler();
    const ts = ports.now();
    const values = await sampler.sample(ts);
    const writer = ports.writer.current;
    if (!writer) throw Object.assign(new Error('the metric history is not open'), { code: 'history_closed' });
    const sample = { device: ports.thingName, ts, values };
    const [outcome] = await writer.insert([sample]);
    if (!outcome || 'refused' in outcome) throw Object.assign(new Error(outcome?.refused ?? 'sample not stored'), { code: 'history_full' });
    const stored = outcome.stored;
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
