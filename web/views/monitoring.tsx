import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, NotFound } from '../api.js';
import { live, useLive } from '../live.js';
import { Card, Facts, fmtDate, useFetched } from './common.js';

/**
 * Host monitoring, against the monitor API: /api/v1/monitor/devices, …/<id>/metrics, …/<id>/latest,
 * …/<id>/series?key=&from=&to=&points= (ms since epoch; points with min/max/avg), alerts under the
 * monitor concern in the state tree. A 404 there means the monitor concern is off.
 */
interface FleetDevice { id: string; online: boolean; lastSeen: number | null }
interface Point { t: number; min: number; max: number; avg: number }

const ranges = { '15 min': 15 * 60_000, '1 h': 3_600_000, '6 h': 6 * 3_600_000, '24 h': 86_400_000, '7 d': 7 * 86_400_000 };
type Range = keyof typeof ranges;

const asList = (body: any, key: string): any[] => (Array.isArray(body) ? body : Array.isArray(body?.[key]) ? body[key] : []);
const fleetOf = (body: any): FleetDevice[] =>
  asList(body, 'devices').map((d) => (typeof d === 'string' ? { id: d, online: true, lastSeen: null } : { id: d.id ?? d.device, online: typeof d.online === 'boolean' ? d.online : d.stale !== undefined ? !d.stale : d.status !== 'stale', lastSeen: d.lastSeen ?? d.lastSeenAt ?? null }));
const metricsOf = (body: any): string[] => asList(body, 'metrics').map((m) => (typeof m === 'string' ? m : m.key ?? m.name));
const pointsOf = (body: any): Point[] =>
  asList(body, 'points').map((p) => ({ t: p.t ?? p.ts ?? p.time, min: p.min ?? p.value, max: p.max ?? p.value, avg: p.avg ?? p.value }));

export function Monitoring() {
  const { tree } = useLive();
  const monitor = tree?.children.find((c) => c.id === 'monitor');
  // no monitor concern in the tree (an agent without it, or monitor.enabled false): nothing to ask
  const enabled = Boolean(monitor);
  const fleet = useFetched<unknown>(enabled ? '/api/v1/monitor/devices' : null, monitor?.context?.samples ?? monitor?.state);
  const [device, setDevice] = useState<string | null>(null);
  const devices = fleet.data ? fleetOf(fleet.data) : [];
  const chosen = device ?? devices[0]?.id ?? null;
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  if (!enabled || fleet.missing) return <Card title="Monitoring" testid="monitoring"><p data-testid="monitoring-off">Monitoring is not enabled on this agent (monitor.enabled).</p></Card>;
  return (
    <div class="stack">
      <Card title="Fleet" testid="fleet">
        {fleet.error && <p class="error" role="alert">{fleet.error}</p>}
        {devices.length === 0 ? (
          <p class="muted">No monitored device yet.</p>
        ) : (
          <ul class="fleet">
            {devices.map((d) => (
              <li>
                <button type="button" aria-pressed={d.id === chosen} onClick={() => setDevice(d.id)}>
                  <span class={`dot ${d.online ? 'ok' : 'unhealthy'}`} aria-hidden="true" /> {d.id} <span class="muted small">{d.online ? 'online' : 'stale'}{d.lastSeen ? ` · ${fmtDate(d.lastSeen)}` : ''}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Card>
      {chosen && <DeviceMetrics device={chosen} />}
      {monitor && <Alerts />}
    </div>
  );
}

function DeviceMetrics({ device }: { device: string }) {
  const base = `/api/v1/monitor/devices/${encodeURIComponent(device)}`;
  const version = live.updates >> 6; // latest values are re-read as the tree moves (a sample changes the monitor actor)
  const metrics = useFetched<unknown>(`${base}/metrics`, device);
  const latest = useFetched<Record<string, unknown>>(`${base}/latest`, version);
  const keys = metrics.data ? metricsOf(metrics.data) : [];
  const [key, setKey] = useState<string | null>(null);
  const [range, setRange] = useState<Range>('1 h');
  const metric = key && keys.includes(key) ? key : (keys[0] ?? null);
  const snapshot = (latest.data && typeof latest.data === 'object' ? ((latest.data as any).metrics ?? latest.data) : {}) as Record<string, unknown>;
  return (
    <>
      <Card title={`Latest · ${device}`} testid="latest">
        <Facts rows={Object.entries(snapshot).slice(0, 40).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toFixed(2)) : String(v)])} />
      </Card>
      <Card title="History" testid="history">
        <div class="toolbar">
          <label>
            Metric{' '}
            <select value={metric ?? ''} onChange={(e) => setKey(e.currentTarget.value)}>
              {keys.map((k) => <option value={k}>{k}</option>)}
            </select>
          </label>
          <span role="group" aria-label="Range" class="segmented">
            {(Object.keys(ranges) as Range[]).map((r) => (
              <button type="button" aria-pressed={r === range} onClick={() => setRange(r)}>{r}</button>
            ))}
          </span>
        </div>
        {metric && <Series base={base} metric={metric} span={ranges[range]} />}
      </Card>
    </>
  );
}

/** A uPlot chart of avg with the min–max band; drag to zoom (a narrower range is fetched), double-click to reset. */
function Series({ base, metric, span }: { base: string; metric: string; span: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [zoom, setZoom] = useState<{ from: number; to: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setZoom(null), [metric, span]);
  useEffect(() => {
    const to = zoom?.to ?? Date.now();
    const from = zoom?.from ?? to - span;
    const width = Math.max(300, box.current?.clientWidth ?? 600);
    let plot: uPlot | undefined;
    api<unknown>(`${base}/series?key=${encodeURIComponent(metric)}&from=${Math.floor(from)}&to=${Math.ceil(to)}&points=${Math.min(1000, Math.floor(width / 2))}`).then(
      (body) => {
        const points = pointsOf(body);
        setError(null);
        if (!box.current) return;
        box.current.textContent = '';
        plot = new uPlot(
          {
            width,
            height: 260,
            scales: { x: { time: true } },
            series: [{}, { label: 'min', stroke: 'rgba(80,140,220,.5)' }, { label: 'avg', stroke: 'rgb(30,100,200)', width: 2 }, { label: 'max', stroke: 'rgba(80,140,220,.5)' }],
            bands: [{ series: [3, 1], fill: 'rgba(80,140,220,.15)' }],
            axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor' }],
            hooks: {
              setSelect: [
                (u) => {
                  if (u.select.width < 5) return;
                  const from = u.posToVal(u.select.left, 'x') * 1000;
                  const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
                  setZoom({ from, to });
                },
              ],
            },
            cursor: { drag: { x: true, y: false, setScale: false } },
          },
          [points.map((p) => p.t / 1000), points.map((p) => p.min), points.map((p) => p.avg), points.map((p) => p.max)],
          box.current,
        );
      },
      (e) => setError(e instanceof NotFound ? 'no history for this metric' : String(e.message)),
    );
    return () => plot?.destroy();
  }, [base, metric, span, zoom]);
  return (
    <>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="plot" ref={box} onDblClick={() => setZoom(null)} data-testid="series" />
      {zoom && <button type="button" onClick={() => setZoom(null)}>Reset zoom</button>}
    </>
  );
}

function Alerts() {
  const monitor = live.tree?.children.find((c) => c.id === 'monitor');
  const alerts = monitor?.children.filter((c) => c.id.startsWith('alert')) ?? [];
  const history = alerts.flatMap((a) => (live.transitions.get(`supervisor/monitor/${a.id}`) ?? []).map((t) => ({ ...t, alert: a.id })));
  return (
    <Card title="Alerts" testid="alerts">
      {alerts.length === 0 ? (
        <p class="muted">No alert rules.</p>
      ) : (
        <table>
          <thead>
            <tr><th>rule</th><th>state</th><th>since</th></tr>
          </thead>
          <tbody>
            {alerts.map((a) => {
              const state = typeof a.state === 'string' ? a.state : JSON.stringify(a.state);
              return (
                <tr>
                  <td>{a.id}</td>
                  <td><span class={`badge ${state === 'firing' ? 'unhealthy' : state === 'pending' ? 'degraded' : 'ok'}`}>{state}</span></td>
                  <td>{fmtDate(a.context?.since ?? a.context?.firingSince)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {history.length > 0 && (
        <ul class="small">
          {history.map((h) => <li>{fmtDate(h.at)} {h.alert}: {h.from} → {h.to}</li>)}
        </ul>
      )}
    </Card>
  );
}
