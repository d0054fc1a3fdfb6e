import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { WsTickets } from './ws-tickets.js';

const refuse: MiddlewareHandler = async (c) => {
  c.header('WWW-Authenticate', 'Bearer');
  return c.json({ error: 'unauthorized', message: 'a valid bearer token is required' }, 401);
};

/** The token of an `Authorization: Bearer <token>` header; the scheme in any case (RFC 9110). */
export function bearerOf(header: string | undefined): string | undefined {
  return header ? /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] : undefined;
}

function bearerMatches(expected: Buffer, header: string | undefined): boolean {
  const candidate = Buffer.from(bearerOf(header) ?? '');
  return candidate.length === expected.length && timingSafeEqual(candidate, expected);
}

/** Bearer token check for the API when a token is configured (Authorization header only: a
 * token in a URL ends up in access logs, browser history and Referer headers). */
export function requireToken(token: string | undefined): MiddlewareHandler {
  if (!token) return async (_c, next) => next();
  const expected = Buffer.from(token);
  return async (c, next) => (bearerMatches(expected, c.req.header('authorization')) ? next() : refuse(c, next));
}

/**
 * /ws when a token is configured: the Authorization header (non-browser clients), or a
 * single-use ticket from POST /api/v1/ws-ticket as `?ticket=` (browsers, which cannot set
 * headers on a WebSocket). Never the token itself in the URL.
 */
export function requireTokenOrTicket(token: string | undefined, tickets: WsTickets): MiddlewareHandler {
  if (!token) return async (_c, next) => next();
  const expected = Buffer.from(token);
  return async (c, next) => {
    if (bearerMatches(expected, c.req.header('authorization')) || tickets.redeem(c.req.query('ticket'))) return next();
    return refuse(c, next);
  };
}
