import { sValidator } from '@hono/standard-validator';
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import type { History } from '../../monitor/history.js';
import { DEVICE_ID, METRIC_KEY } from '../../monitor/payload.js';
import type { Slot } from '../../slot.js';
import { firstIssue } from '../validation.js';

export interface MonitorRouteDeps {
  history: Slot<History>;
  thingName: string;
  /** the own sampling interval: a device is stale after three of its intervals without a sample */
  intervalMs: number;
  now?: () => number;
}

/** Points a series answer holds at most. */
export const MAX_POINTS = 2000;
const HOUR_MS = 3_600_000;
/** The widest range one query may ask for. */
const MAX_RANGE_MS = 400 * 24 * HOUR_MS;

const ms = z.coerce.number().int('must be an integer (ms since the epoch)').min(0).max(8.64e15);
const SeriesQuery = z
  .strictObject({
    key: z.string().regex(METRIC_KEY, 'must be a metric key such as cpu-percent'),
    from: ms.optional(),
    to: ms.optional(),
    points: z.coerce.number().int().min(1).max(MAX_POINTS).default(500),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.to > q.from, { message: 'to must be after from', path: ['to'] })
  .refine((q) => q.from === undefined || q.to === undefined || q.to - q.from <= MAX_RANGE_MS, {
    message: 'the range may span 400 days at most',
    path: ['from'],
  });

/**
 * Seed 003's read-only API over the metric history, under /api/v1/monitor: the devices with
 * last seen and online/stale, a device's metric keys, its latest sample, and one series
 * downsampled on the server (min/max/avg per bucket, at most `points` buckets).
 */
export function monitorRoutes(deps: MonitorRouteDeps) {
  const now = deps.now ?? Date.now;
  const open = () => deps.history.current ?? raise(new AppError('unavailable', 'the metric history is not open'));
  const known = (history: History, id: string) => {
    if (!DEVICE_ID.test(id) || !history.has(id)) throw new AppError('not_found', `no samples from device ${JSON.stringify(id.slice(0, 128))}`);
    return id;
  };
  return new Hono()
    .get('/devices', (c) => {
      const at = now();
      const devices = open()
        .deviceList()
        .map((d) => {
          const expected = Math.max(deps.intervalMs, d.lastGapMs ?? deps.intervalMs);
          return { ...d, self: d.id === deps.thingName, status: at - d.lastSeen > 3 * expected ? ('stale' as const) : ('online' as const) };
        });
      return c.json({ devices });
    })
    .get('/devices/:id/metrics', (c) => {
      const history = open();
      const id = known(history, c.req.param('id'));
      return c.json({ device: id, keys: history.keys(id) });
    })
    .get('/devices/:id/inventory', (c) => {
      const history = open();
      const id = c.req.param('id');
      const inventory = DEVICE_ID.test(id) ? history.inventory(id) : undefined;
      if (inventory === undefined) throw new AppError('not_found', `no inventory from device ${JSON.stringify(id.slice(0, 128))}`);
      return c.json(inventory as Record<string, unknown>);
    })
    .get('/devices/:id/latest', (c) => {
      const history = open();
      const id = known(history, c.req.param('id'));
      return c.json({ device: id, ...history.latest(id) });
    })
    .get(
      '/devices/:id/series',
      sValidator('query', SeriesQuery, (result, c) => {
        if (!result.success) return c.json({ error: 'bad_request', message: firstIssue(result.error) }, 400);
      }),
      (c) => {
        const history = open();
        const id = known(history, c.req.param('id'));
        const q = c.req.valid('query');
        const to = q.to ?? (q.from !== undefined ? q.from + HOUR_MS : now() + 1);
        const from = q.from ?? to - HOUR_MS;
        const bucketMs = Math.max(1, Math.ceil((to - from) / q.points));
        return c.json({ device: id, key: q.key, from, to, bucketMs, points: history.series(id, q.key, from, to, q.points) });
      },
    );
}

function raise(error: Error): never {
  throw error;
}
