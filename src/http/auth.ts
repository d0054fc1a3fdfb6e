import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

/** The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 9110). */
export function bearerOf(header: string | undefined): string | undefined {
  return header ? /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] : undefined;
}

/**
 * Bearer token check for the API and /ws when a token is configured. Only where `inQuery`
 * (/ws: browsers cannot set headers on a WebSocket) is `?access_token=` taken as well: a URL
 * ends up in logs, history and Referer headers.
 */
export function requireToken(token: string | undefined, options: { inQuery?: boolean } = {}): MiddlewareHandler {
  if (!token) return async (_c, next) => next();
  const expected = Buffer.from(token);
  return async (c, next) => {
    const given = bearerOf(c.req.header('authorization')) ?? (options.inQuery ? c.req.query('access_token') : undefined);
    const candidate = Buffer.from(given ?? '');
    if (candidate.length !== expected.length || !timingSafeEqual(candidate, expected)) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json({ error: 'unauthorized', message: 'a valid bearer token is required' }, 401);
    }
    return next();
  };
}
