import { Hono } from 'hono';
import type { Metrics } from '../../metrics.js';

/** GET /metrics in the Prometheus text format. */
export function metricsRoutes(deps: { metrics: Metrics }) {
  return new Hono().get('/', async (c) => {
    const { body, contentType } = await deps.metrics.scrape();
    return c.body(body, 200, { 'Content-Type': contentType });
  });
}
