import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AnyActorRef } from 'xstate';
import { AppError, statusOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ActorChanges } from '../observe.js';
import { AllowedHosts } from './allowed-hosts.js';
import { requireToken, requireTokenOrTicket } from './auth.js';
import { limitBody } from './body-limit.js';
import { hostGuard, jsonBodiesOnly, originGuard } from './browser-guard.js';
import { dashboardFiles, dashboardRoutes, machinesRoutes } from './routes/dashboard.js';
import { WsTickets } from './ws-tickets.js';
import { firmwareCacheRoutes, firmwareRoutes, type FirmwareRouteDeps } from './routes/firmware.js';
import { devicesRoutes, type DevicesRouteDeps } from './routes/devices.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import type { JobRecords } from '../jobs/records.js';
import { metricsRoutes } from './routes/metrics.js';
import { monitorRoutes, type MonitorRouteDeps } from './routes/monitor.js';
import type { MonitorHub } from '../monitor/hub.js';
import { outboxRoutes, type OutboxRouteDeps } from './routes/outbox.js';
import { stateRoutes } from './routes/state.js';
import { wsRoutes, type WsLimits } from './ws.js';

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
  /** browser guards and body limits; without them, the config's defaults on a loopback listener */
  guard?: { hosts?: AllowedHosts; allowedOrigins?: readonly string[]; maxBodyBytes?: number };
  wsLimits?: WsLimits;
}

/** Routes with a body limit of their own (publish: outbox.maxPayloadBytes). */
const OWN_BODY_LIMIT = new Set(['/api/v1/publish']);

/** The HTTP surface: one sub-app per resource, each built from the dependencies it needs.
 * /health and /metrics stay open for probes and scrapers. Before any route: the Host check
 * (DNS rebinding; device and probe endpoints exempt) and the Origin check (cross-origin
 * requests that change state or open /ws). */
export function createApp(deps: AppDeps) {
  const app = new Hono();
  const tickets = new WsTickets();
  const files = dashboardFiles(deps.dashboardDir ?? '/nonexistent');
  const maxBodyBytes = deps.guard?.maxBodyBytes ?? 64 * 1024;
  const apiBodyLimit = limitBody(maxBodyBytes, (c, message) => c.json({ error: 'too_large', message: `${message} (http.maxBodyBytes)` }, 413));
  app.use('*', hostGuard(deps.guard?.hosts ?? new AllowedHosts({ listenHost: '127.0.0.1', allowedHosts: [] })));
  app.use('*', originGuard(deps.guard?.allowedOrigins ?? []));
  const api = new Hono()
    .use('*', requireToken(deps.token))
    .use('*', jsonBodiesOnly())
    .use('*', (c, next) => (OWN_BODY_LIMIT.has(c.req.path) ? next() : apiBodyLimit(c, next)))
    .route('/state', stateRoutes(deps))
    .route('/machines', machinesRoutes({ files }))
    .post('/ws-ticket', (c) => c.json(tickets.issue()))
    .route('/', outboxRoutes(deps));
  if (deps.jobRecords) api.route('/jobs', jobRoutes({ jobRecords: deps.jobRecords }));
  if (deps.devices) api.route('/devices', devicesRoutes({ root: deps.root, devices: deps.devices }));
  if (deps.monitor) api.route('/monitor', monitorRoutes(deps.monitor));
  if (deps.firmware) api.route('/firmware', firmwareCacheRoutes(deps.firmware.firmware));

  app.route('/health', healthRoutes(deps));
  app.route('/metrics', metricsRoutes(deps));
  app.route('/api/v1', api);
  app.use('/ws', requireTokenOrTicket(deps.token, tickets));
  app.route(
    '/ws',
    wsRoutes({
      ...deps,
      coalesceMs: deps.wsCoalesceMs,
      readings: deps.devices?.hub,
      writer: deps.devices?.writer,
      samples: deps.monitor?.hub,
      limits: deps.wsLimits,
    }),
  );
  app.route('/', dashboardRoutes({ files }));
  if (deps.firmware) app.route('/', firmwareRoutes({ ...deps.firmware, maxBodyBytes, outbox: deps.outbox, log: deps.log }));

  app.notFound((c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    if (error instanceof AppError) return c.json({ error: error.code, message: error.message }, statusOf[error.code]);
    if (error instanceof HTTPException) return c.json({ error: 'bad_request', message: error.message }, error.status);
    deps.log.error({ err: String(error), path: c.req.path }, 'request failed');
    return c.json({ error: 'internal', message: 'internal error' }, 500);
  });
  return app;
}
