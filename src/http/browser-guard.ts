import type { Context, MiddlewareHandler } from 'hono';
import type { AllowedHosts } from './allowed-hosts.js';

/**
 * Guards against what a web page can make a browser do to an agent on the same machine or
 * LAN, which has no token by default: DNS rebinding (a foreign Host), cross-origin requests
 * that change state or open /ws (a foreign Origin), and "simple" bodies (text/plain, forms)
 * that a page may send without a CORS preflight.
 */

const forbidden = (c: Context, message: string) => c.json({ error: 'forbidden', message }, 403);

/** Device and probe endpoints answer any Host: devices and scrapers use whatever name they were given. */
const ANY_HOST = new Set(['/version', '/firmware', '/webhooks/harbor', '/health', '/metrics']);

/** 403 for a Host this box does not go by, on every route but the device and probe endpoints. */
export function hostGuard(hosts: AllowedHosts): MiddlewareHandler {
  return async (c, next) => {
    if (ANY_HOST.has(c.req.path)) return next();
    const host = c.req.header('host');
    if (!hosts.allows(host)) {
      return forbidden(c, `Host '${host!.slice(0, 100)}' is not a name of this agent; add it to http.allowedHosts to allow it`);
    }
    return next();
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * 403 for a browser's cross-origin request that changes state (any method but GET, HEAD and
 * OPTIONS) or opens a WebSocket. No Origin (curl, devices, scripts) and the agent's own origin
 * pass, as do the origins in http.allowedOrigins.
 */
export function originGuard(allowedOrigins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(allowedOrigins.map((o) => new URL(o).origin));
  return async (c, next) => {
    const upgrade = c.req.header('upgrade')?.toLowerCase() === 'websocket';
    if (SAFE_METHODS.has(c.req.method) && !upgrade) return next();
    const origin = c.req.header('origin');
    if (origin === undefined || sameOrigin(origin, c.req.header('host')) || allowed.has(origin.toLowerCase())) return next();
    return forbidden(c, `cross-origin request from ${origin.slice(0, 100)} refused; add it to http.allowedOrigins to allow it`);
  };
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host || origin === 'null') return false;
  try {
    return new URL(origin).host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * 415 for a request body on a JSON route that is not declared JSON: text/plain and forms are
 * what a page can send cross-origin without asking, and what `curl -d` sends by default.
 */
export function jsonBodiesOnly(): MiddlewareHandler {
  return async (c, next) => {
    if (SAFE_METHODS.has(c.req.method)) return next();
    const type = c.req.header('content-type');
    const length = c.req.header('content-length');
    const hasBody = c.req.header('transfer-encoding') !== undefined || (length !== undefined && length !== '0');
    if (type === undefined ? !hasBody : JSON_TYPE.test(type)) return next();
    const got = type === undefined ? 'a body without a Content-Type' : `Content-Type: ${type.slice(0, 100)}`;
    const hint = type?.startsWith('application/x-www-form-urlencoded') ? " (what curl -d sends unless told: add -H 'Content-Type: application/json')" : '';
    return c.json(
      { error: 'unsupported_media_type', message: `this route takes JSON: send Content-Type: application/json with a JSON body; got ${got}${hint}` },
      415,
    );
  };
}
