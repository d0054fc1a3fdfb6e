import { fromCallback } from 'xstate';
import type { SampleStoredEvent } from '../../../machines/monitor.js';
import type { MonitorHub } from '../../monitor/hub.js';

export interface SampleFeedPorts {
  hub: MonitorHub;
  /** whether anything in the chart wants samples (alert rules are configured) */
  wanted: boolean;
  /** runs when the monitor stops: releases the sampler (its nvidia-smi child) */
  release: () => void;
}

/**
 * The `sampleFeed` actor: every stored sample (own and collected) into the monitor chart as
 * `monitor.sample`, which forwards it to the `alerts` child. With no alert rules it stays
 * silent, so samples never pass through the chart for nothing.
 */
export function sampleFeedActor(ports: SampleFeedPorts) {
  return fromCallback<SampleStoredEvent, void>(({ sendBack }) => {
    const unsubscribe = ports.wanted ? ports.hub.subscribe((sample) => sendBack({ type: 'monitor.sample', sample })) : () => {};
    return () => {
      unsubscribe();
      ports.release();
    };
  });
}
