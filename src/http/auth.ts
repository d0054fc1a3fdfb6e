import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';

/**
 * Bearer token check for the API and /ws when a token is configured. Browsers cannot set
 * headers on a WebSocket, so `?access_token=` is accepted as well.
 */
export function requireToken(token: string | undefined): MiddlewareHandler {
  if (!token) return async (_c, next) => next();
  const expected = Buffer.from(token);
  return async (c, next) => {
    const header = c.req.header('authorization');
    const given = header?.startsWith('Bearer ') ? header.slice(7) : c.req.query('access_token');
    const candidate = Buffer.from(given ?? '');
    if (candidate.length !== expected.length || !timingSafeEqual(candidate, expected)) {
      c.header('WWW-Authenticate', 'Bearer');
      return c.json({ error: 'unauthorized', message: 'a valid bearer token is required' }, 401);
    }
    return next();
  };
}
