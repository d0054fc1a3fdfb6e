import type { MonitorSample } from '../../machines/monitor.js';
import { Topic } from '../events.js';

export type SampleListener = (sample: MonitorSample) => void;

/**
 * Where stored samples meet their consumers beside the chart: /ws subscribers (each with the
 * device ids it wants, or all) and the alerts feed. A sample is published here only after
 * it is committed to the history.
 */
export class MonitorHub extends Topic<MonitorSample> {
  constructor() {
    super((sample) => sample.device);
  }
}
