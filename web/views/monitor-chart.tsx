import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, NotFound } from '../api.js';

/** One bucket of GET /api/v1/monitor/devices/<id>/series (docs/monitor.md). */
interface Point {
  ts: number;
  min: number | null;
  max: number | null;
  avg: number | null;
}

export const ranges = { '15 min': 15 * 60_000, '1 h': 3_600_000, '6 h': 6 * 3_600_000, '24 h': 86_400_000, '7 d': 7 * 86_400_000 };
export type Range = keyof typeof ranges;

/** The plot's options: avg with the min–max band; dragging across calls `onZoom`. */
function options(width: number, onZoom: (from: number, to: number) => void): uPlot.Options {
  return {
    width,
    height: 260,
    scales: { x: { time: true } },
    series: [
      {},
      { label: 'min', stroke: 'rgba(80,140,220,.5)' },
      { label: 'avg', stroke: 'rgb(30,100,200)', width: 2 },
      { label: 'max', stroke: 'rgba(80,140,220,.5)' },
    ],
    bands: [{ series: [3, 1], fill: 'rgba(80,140,220,.15)' }],
    axes: [
      { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,.2)' } },
      { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,.2)' } },
    ],
    legend: { live: false },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 5) return;
          onZoom(u.posToVal(u.select.left, 'x') * 1000, u.posToVal(u.select.left + u.select.width, 'x') * 1000);
        },
      ],
    },
    cursor: { drag: { x: true, y: false, setScale: false } },
  };
}

/**
 * A uPlot chart of one metric over `span` (or the zoomed range): drag across to zoom in (the
 * narrower range is fetched again, so the buckets get finer), double-click or Reset zoom to go
 * back. `refresh` changes when new samples are worth showing (not while zoomed in).
 */
export function SeriesChart({ base, metric, span, refresh }: { base: string; metric: string; span: number; refresh: number }) {
  const box = useRef<HTMLDivElement>(null);
  const [zoom, setZoom] = useState<{ from: number; to: number } | null>(null);
  const [info, setInfo] = useState<{ points: number; bucketMs: number; error: string | null }>({ points: 0, bucketMs: 0, error: null });
  useEffect(() => setZoom(null), [base, metric, span]);
  useEffect(() => {
    const to = zoom?.to ?? Date.now();
    const from = zoom?.from ?? to - span;
    const width = Math.max(280, (box.current?.clientWidth ?? 600) - 2);
    let plot: uPlot | undefined;
    let current = true;
    const path = `${base}/series?key=${encodeURIComponent(metric)}&from=${Math.floor(from)}&to=${Math.ceil(to)}&points=${Math.min(1000, Math.floor(width / 2))}`;
    api<{ bucketMs: number; points: Point[] }>(path).then(
      ({ bucketMs, points }) => {
        if (!current || !box.current) return;
        setInfo({ points: points.length, bucketMs, error: null });
        box.current.textContent = '';
        const data: uPlot.AlignedData = [points.map((p) => p.ts / 1000), points.map((p) => p.min), points.map((p) => p.avg), points.map((p) => p.max)];
        plot = new uPlot(
          options(width, (f, t) => setZoom({ from: f, to: t })),
          data,
          box.current,
        );
        plot.setScale('x', { min: from / 1000, max: to / 1000 });
      },
      (e) => current && setInfo({ points: 0, bucketMs: 0, error: e instanceof NotFound ? 'no history for this metric' : String(e.message) }),
    );
    return () => ((current = false), plot?.destroy());
  }, [base, metric, span, zoom, zoom ? 0 : refresh]);
  return (
    <>
      {info.error && (
        <p class="error" role="alert">
          {info.error}
        </p>
      )}
      <div
        class="plot"
        role="img"
        aria-label={`${metric} over time; double-click to reset the zoom`}
        ref={box}
        onDblClick={() => setZoom(null)}
        data-testid="series"
        data-points={info.points}
        data-zoomed={zoom ? 'true' : 'false'}
      />
      <div class="actions">
        <span class="muted small" data-testid="series-info">
          {info.points} points{info.bucketMs ? `, ${fmtBucket(info.bucketMs)} each` : ''}
          {zoom ? ' (zoomed in)' : ''}
        </span>
        {zoom && (
          <button type="button" onClick={() => setZoom(null)}>
            Reset zoom
          </button>
        )}
      </div>
    </>
  );
}

const fmtBucket = (ms: number) => (ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);
