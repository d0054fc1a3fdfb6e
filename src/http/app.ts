import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AnyActorRef } from 'xstate';
import { AppError, statusOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ActorChanges } from '../observe.js';
import { requireToken, requireTokenOrTicket } from './auth.js';
import { dashboardFiles, dashboardRoutes, machinesRoutes } from './routes/dashboard.js';
import { WsTickets } from './ws-tickets.js';
import { firmwareRoutes, type FirmwareRouteDeps } from './routes/firmware.js';
import { devicesRoutes, type DevicesRouteDeps } from './routes/devices.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import type { JobRecords } from '../jobs/records.js';
import { metricsRoutes } from './routes/metrics.js';
import { monitorRoutes, type MonitorRouteDeps } from './routes/monitor.js';
import type { MonitorHub } from '../monitor/hub.js';
import { outboxRoutes, type OutboxRouteDeps } from './routes/outbox.js';
import { stateRoutes } from './routes/state.js';
import { wsRoutes } from './ws.js';

export interface AppDeps extends Omit<OutboxRouteDeps, 'root'> {
  root: () => AnyActorRef | undefined;
  metrics: Metrics;
  changes: ActorChanges;
  log: Logger;
  /** when set, /api/v1 and /ws need it as a bearer token */
  token?: string;
  wsCoalesceMs?: number;
  jobRecords?: () => Promise<JobRecords>;
  /** OtaFlux's device endpoints (/version, /firmware, /webhooks/harbor): open, devices send no token */
  firmware?: Omit<FirmwareRouteDeps, 'outbox' | 'log'>;
  devices?: DevicesRouteDeps['devices'];
  /** the built dashboard (index.html, assets/, machines.json); GET / answers 503 without it */
  dashboardDir?: string;
  /** host monitoring's history API and live samples */
  monitor?: MonitorRouteDeps & { hub: MonitorHub };
}

/** The HTTP surface: one sub-app per resource, each built from the dependencies it needs.
 * /health and /metrics stay open for probes and scrapers. */
export function createApp(deps: AppDeps) {
  const app = new Hono();
  const tickets = new WsTickets();
  const files = dashboardFiles(deps.dashboardDir ?? '/nonexistent');
  const api = new Hono()
    .use('*', requireToken(deps.token))
    .route('/state', stateRoutes(deps))
    .route('/machines', machinesRoutes({ files }))
    .post('/ws-ticket', (c) => c.json(tickets.issue()))
    .route('/', outboxRoutes(deps));
  if (deps.jobRecords) api.route('/jobs', jobRoutes({ jobRecords: deps.jobRecords }));
  if (deps.devices) api.route('/devices', devicesRoutes({ root: deps.root, devices: deps.devices }));
  if (deps.monitor) api.route('/monitor', monitorRoutes(deps.monitor));

  app.route('/health', healthRoutes(deps));
  app.route('/metrics', metricsRoutes(deps));
  app.route('/api/v1', api);
  app.use('/ws', requireTokenOrTicket(deps.token, tickets));
  app.route('/ws', wsRoutes({ ...deps, coalesceMs: deps.wsCoalesceMs, readings: deps.devices?.hub, writer: deps.devices?.writer, samples: deps.monitor?.hub }));
  app.route('/', dashboardRoutes({ files }));
  if (deps.firmware) app.route('/', firmwareRoutes({ ...deps.firmware, outbox: deps.outbox, log: deps.log }));

  app.notFound((c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    if (error instanceof AppError) return c.json({ error: error.code, message: error.message }, statusOf[error.code]);
    if (error instanceof HTTPException) return c.json({ error: 'bad_request', message: error.message }, error.status);
    deps.log.error({ err: String(error), path: c.req.path }, 'request failed');
    return c.json({ error: 'internal', message: 'internal error' }, 500);
  });
  return app;
}
