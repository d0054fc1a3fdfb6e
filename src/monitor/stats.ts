/** The monitor's data-plane figures, read by /metrics at scrape time. */
export interface MonitorStats {
  samples: number;
  sampleSecondsTotal: number;
  lastSampleSeconds: number;
  /** own samples the outbox did not take */
  publishFailures: number;
  collectorMessages: number;
  collectorRejects: number;
  /** collected samples not stored (history unavailable or full): left unacknowledged */
  collectorStoreFailures: number;
}

export const emptyMonitorStats = (): MonitorStats => ({
  samples: 0,
  sampleSecondsTotal: 0,
  lastSampleSeconds: 0,
  publishFailures: 0,
  collectorMessages: 0,
  collectorRejects: 0,
  collectorStoreFailures: 0,
});
