import { useEffect, useState } from 'preact/hooks';
import { socket } from '../app.js';
import { live, useLive } from '../live.js';
import { Alerts } from './alerts.js';
import { Card, fmtBytes, fmtDate, fmtTime, useFetched } from './common.js';
import { ranges, SeriesChart, type Range } from './monitor-chart.js';

/**
 * Host monitoring against the monitor API (docs/monitor.md): the fleet with online/stale, device
 * and metric pickers, the latest sample (kept live by /ws `sample` frames of the chosen device),
 * a time-series chart with a range selector and zoom, and the alerts under monitor → alerts.
 */
interface FleetDevice {
  id: string;
  lastSeen: number;
  self: boolean;
  status: 'online' | 'stale';
}
interface Sample {
  device: string;
  ts: number;
  values: Record<string, number>;
}

/** Bytes as KiB/MiB (the exact number on hover), anything else to two decimals. */
const fmtValue = (key: string, v: number) => (key.endsWith('-bytes') ? <span title={String(v)}>{fmtBytes(v)}</span> : Number(v.toFixed(2)));

export function Monitoring() {
  const { tree } = useLive();
  const monitor = tree?.children.find((c) => c.id === 'monitor');
  // the monitor actor changes with every own sample: the fleet's last-seen and status are re-read then
  const fleet = useFetched<{ devices: FleetDevice[] }>(monitor ? '/api/v1/monitor/devices' : null, monitor?.context?.lastSample?.at ?? monitor?.state);
  const [device, setDevice] = useState<string | null>(null);
  const devices = [...(fleet.data?.devices ?? [])].sort((a, b) => Number(b.self) - Number(a.self) || a.id.localeCompare(b.id));
  const chosen = device && devices.some((d) => d.id === device) ? device : (devices[0]?.id ?? null);
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  if (!monitor || fleet.missing)
    return (
      <Card title="Monitoring" testid="monitoring">
        <p data-testid="monitoring-off">Monitoring is not enabled on this agent (monitor.enabled).</p>
      </Card>
    );
  return (
    <div class="stack">
      <Card title="Fleet" testid="fleet">
        {fleet.error && (
          <p class="error" role="alert">
            {fleet.error}
          </p>
        )}
        {devices.length === 0 ? (
          <p class="muted">No monitored device yet.</p>
        ) : (
          <ul class="fleet">
            {devices.map((d) => (
              <li data-fleet-device={d.id}>
                <button type="button" aria-pressed={d.id === chosen} onClick={() => setDevice(d.id)}>
                  <span class={`dot ${d.status === 'online' ? 'ok' : 'degraded'}`} aria-hidden="true" /> {d.id}
                  {d.self && <span class="muted small"> (this agent)</span>}{' '}
                  <span class={`badge ${d.status}`} data-testid="fleet-status">
                    {d.status}
                  </span>
                  <span class="muted small"> {fmtTime(d.lastSeen)}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Card>
      {chosen && <DeviceMetrics device={chosen} devices={devices.map((d) => d.id)} onDevice={setDevice} />}
      <Alerts monitor={monitor} />
    </div>
  );
}

/** Streams the chosen device's samples over /ws while the view shows it. */
function useSamples(device: string): Sample | null {
  useEffect(() => {
    live.sample = null;
    const subscribe = () => socket.send({ type: 'subscribe', monitor: [device] });
    subscribe();
    socket.resubscribe.push(subscribe);
    return () => {
      socket.resubscribe.splice(socket.resubscribe.indexOf(subscribe), 1);
      socket.send({ type: 'unsubscribe' });
    };
  }, [device]);
  return live.sample?.device === device ? live.sample : null;
}

function DeviceMetrics({ device, devices, onDevice }: { device: string; devices: string[]; onDevice: (id: string) => void }) {
  const base = `/api/v1/monitor/devices/${encodeURIComponent(device)}`;
  const streamed = useSamples(device);
  const stored = useFetched<Sample>(`${base}/latest`, device);
  const latest = streamed ?? stored.data;
  const keys = useFetched<{ keys: string[] }>(`${base}/metrics`, `${device}|${latest ? Object.keys(latest.values).length : 0}`).data?.keys ?? [];
  const [key, setKey] = useState<string | null>(null);
  const [range, setRange] = useState<Range>('15 min');
  const metric = key && keys.includes(key) ? key : (keys.find((k) => k === 'cpu-percent') ?? keys[0] ?? null);
  // the chart follows new samples, at most every 10 s (a sample a second would redraw it needlessly)
  const refresh = latest ? Math.floor(latest.ts / 10_000) : 0;
  return (
    <>
      <Card title={`Latest · ${device}`} testid="latest">
        <p class="muted small" data-testid="latest-at">
          {latest ? `sampled ${fmtDate(latest.ts)}` : 'no sample yet'}
        </p>
        {latest && (
          <dl class="facts values">
            {Object.entries(latest.values)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd data-metric={k}>{fmtValue(k, v)}</dd>
                </>
              ))}
          </dl>
        )}
      </Card>
      <Card title="History" testid="history">
        <div class="toolbar">
          <label>
            Device{' '}
            <select value={device} onChange={(e) => onDevice(e.currentTarget.value)} data-testid="device-picker">
              {devices.map((d) => (
                <option value={d}>{d}</option>
              ))}
            </select>
          </label>
          <label>
            Metric{' '}
            <select value={metric ?? ''} onChange={(e) => setKey(e.currentTarget.value)} data-testid="metric-picker">
              {keys.map((k) => (
                <option value={k}>{k}</option>
              ))}
            </select>
          </label>
          <fieldset class="segmented">
            <legend class="visually-hidden">Range</legend>
            {(Object.keys(ranges) as Range[]).map((r) => (
              <button type="button" aria-pressed={r === range} onClick={() => setRange(r)}>
                {r}
              </button>
            ))}
          </fieldset>
        </div>
        {metric && <SeriesChart base={base} metric={metric} span={ranges[range]} refresh={refresh} />}
      </Card>
    </>
  );
}
