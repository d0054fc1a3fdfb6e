import { Hono } from 'hono';
import type { JobRecords } from '../../jobs/records.js';

/** GET /api/v1/jobs: the executions this agent remembers (bounded history), newest first. */
export function jobRoutes(deps: { jobRecords: () => Promise<JobRecords> }) {
  return new Hono().get('/', async (c) => {
    const records = (await deps.jobRecords()).all();
    return c.json({ jobs: [...records].reverse() });
  });
}
