import { timingSafeEqual } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { limitBody } from '../body-limit.js';
import { isValidDeviceId } from '../../firmware/device-id.js';
import { checkHarborPayload, deviceOfPush } from '../../firmware/harbor.js';
import { etagMatches, parseRange } from '../../firmware/range.js';
import type { FirmwareService, HotFirmware } from '../../firmware/service.js';
import type { Logger } from '../../log.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';

export interface FirmwareRouteDeps {
  firmware: FirmwareService;
  outbox: Slot<Outbox>;
  repositoryPrefix: string;
  notifyTopicPrefix: string;
  webhookSecret?: string;
  /** largest webhook body; larger ones get 413 before they are read (a Harbor payload is a few KB) */
  maxBodyBytes?: number;
  log: Logger;
}

const TEXT = 'text/plain; charset=utf-8';
const text = (body: string, status: number) => new Response(body, { status, headers: { 'content-type': TEXT } });

/** The device id of a /version or /firmware request, or the OtaFlux-compatible 400. */
function deviceOf(c: Context): string | Response {
  const device = c.req.query('device');
  if (!device) return text("Missing required query parameter: 'device'", 400);
  // The key twice is a query OtaFlux's extractor refuses; cheap to look for only when possible.
  if (c.req.url.indexOf('device=') !== c.req.url.lastIndexOf('device=') && c.req.queries('device')!.length > 1) {
    return text('Failed to deserialize query string: duplicate field `device`', 400);
  }
  // Never a registry request for an id that is not one repository path component.
  if (!isValidDeviceId(device))
    return text(`Invalid device id '${device.slice(0, 64)}': lowercase letters, digits and . _ - separators, at most 128 characters`, 400);
  return device;
}

const notFound = (device: string) => text(`No firmware for device '${device}'`, 404);

/** GET /api/v1/firmware: the requests answered from memory per cached device (`hits`), for the
 * dashboard; the rest of each entry (version, size, CRC, freshness) is in the state tree. */
export function firmwareCacheRoutes(service: FirmwareService) {
  return new Hono().get('/', (c) => c.json({ hits: service.hitsByDevice() }));
}

/**
 * OtaFlux's device endpoints, open to devices (they cannot send a token): GET /version and
 * GET /firmware with the same bodies and codes, served from memory, plus HEAD, Range, ETag /
 * If-None-Match, and CRC32/sha256/MD5 headers; and POST /webhooks/harbor.
 */
export function firmwareRoutes(deps: FirmwareRouteDeps) {
  const app = new Hono();

  app.get('/version', async (c) => {
    const device = deviceOf(c);
    if (typeof device !== 'string') return device;
    const hot = await deps.firmware.get(device);
    if (!hot) return notFound(device);
    return new Response(hot.versionBody, { status: 200, headers: { 'content-type': TEXT, 'content-length': String(Buffer.byteLength(hot.versionBody)) } });
  });

  app.get('/firmware', async (c) => {
    const device = deviceOf(c);
    if (typeof device !== 'string') return device;
    const hot = await deps.firmware.get(device);
    if (!hot) return notFound(device);
    return firmwareResponse(c, hot);
  });

  const maxBody = deps.maxBodyBytes ?? 64 * 1024;
  // OtaFlux's (axum's) words for an oversize body, and the key that sets the limit.
  const tooLarge = (c: Context) => c.text(`Failed to buffer the request body: length limit exceeded (http.maxBodyBytes is ${maxBody} bytes)`, 413);
  const secret: MiddlewareHandler = async (c, next) => {
    if (deps.webhookSecret && !sameSecret(c.req.header('authorization'), deps.webhookSecret)) return text('Invalid or missing Authorization header', 401);
    return next();
  };
  app.post('/webhooks/harbor', secret, limitBody(maxBody, tooLarge), async (c) => {
    if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
      return text('Expected request with `Content-Type: application/json`', 415);
    }
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch (error) {
      return text(`Failed to parse the request body as JSON: ${(error as Error).message}`, 400);
    }
    const check = checkHarborPayload(body);
    if (check.kind === 'invalid') return text(`Failed to deserialize the JSON body into the target type: ${check.message}`, 422);
    if (check.kind === 'ignored') {
      deps.log.info({ type: check.type }, 'webhook event ignored');
      return c.body(null, 200);
    }
    const device = deviceOfPush(check, deps.repositoryPrefix);
    if (!device || !isValidDeviceId(device)) {
      deps.log.info({ repository: check.repoFullName }, 'webhook push for a repository outside the prefix: ignored');
      return c.body(null, 200);
    }
    // Like OtaFlux: the refresh runs before the answer, and failures still get 200 (no Harbor retries).
    const { before, after, failure } = await deps.firmware.refresh(device);
    if (failure) deps.log.warn({ device, tags: check.tags, reason: failure.message }, 'webhook push: the refresh failed; the last good build is still served');
    if (!after) {
      if (!failure) deps.log.warn({ device, tags: check.tags }, 'webhook push: no good firmware after the refresh');
      return c.body(null, 200);
    }
    // Announced only when the build served changed: a refused or unchanged refresh says nothing.
    if (before && before.meta.digest === after.meta.digest && before.meta.version === after.meta.version) {
      if (!failure) deps.log.info({ device, version: after.meta.version }, 'webhook push: firmware unchanged; nothing announced');
      return c.body(null, 200);
    }
    await announce(deps, device, after);
    return c.body(null, 200);
  });

  return app;
}

/** The OtaFlux notice of a new build: {"version","size"}, QoS 1, retained, through the outbox. */
async function announce(deps: FirmwareRouteDeps, device: string, hot: HotFirmware): Promise<void> {
  const topic = `${deps.notifyTopicPrefix}/${device}`;
  const payload = Buffer.from(JSON.stringify({ version: hot.meta.version, size: hot.meta.size }));
  const outbox = deps.outbox.current;
  if (!outbox) deps.log.warn({ device, topic }, 'webhook push: the outbox is not open; no notice sent');
  else
    await outbox
      .enqueue({ topic, payload, qos: 1, retain: true })
      .catch((error) => deps.log.warn({ device, err: String(error) }, 'cannot queue the firmware notice'));
  deps.log.info({ device, version: hot.meta.version, topic }, 'firmware refreshed by webhook');
}

function firmwareResponse(c: Context, hot: HotFirmware): Response {
  const { meta, body } = hot;
  const headers: Record<string, string> = { ...hot.firmwareHeaders };
  if (etagMatches(c.req.header('if-none-match'), hot.etag))
    return new Response(null, { status: 304, headers: { etag: hot.etag, 'x-firmware-version': meta.version } });
  const ifRange = c.req.header('if-range');
  const range = ifRange && ifRange !== hot.etag ? undefined : parseRange(c.req.header('range'), body.length);
  if (range === 'unsatisfiable') return new Response(null, { status: 416, headers: { 'content-range': `bytes */${body.length}` } });
  if (range) {
    const part = body.subarray(range.start, range.end + 1);
    headers['content-range'] = `bytes ${range.start}-${range.end}/${body.length}`;
    headers['content-length'] = String(part.length);
    return new Response(part, { status: 206, headers });
  }
  return new Response(body, { status: 200, headers });
}

function sameSecret(given: string | undefined, secret: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
