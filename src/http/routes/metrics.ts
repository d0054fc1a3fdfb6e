import { Hono } from 'hono';
import type { Registry } from 'prom-client';

/** GET /metrics in the Prometheus text format. */
export function metricsRoutes(deps: { registry: Registry }) {
  return new Hono().get('/', async (c) => {
    const body = await deps.registry.metrics();
    return c.body(body, 200, { 'Content-Type': deps.registry.contentType });
  });
}
