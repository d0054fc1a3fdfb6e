import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';

/**
 * A body limit that refuses before reading: by Content-Length when there is one, else as soon
 * as the chunks passed the limit; nothing beyond it is kept. After the 413 the server discards
 * what the client still sends for a moment (@hono/node-server: at most 64 MiB or 500 ms, then
 * the socket is closed), so the client reads the 413 instead of a connection reset.
 */
export function limitBody(maxBytes: number, answer: (c: Context, message: string) => Response): MiddlewareHandler {
  return bodyLimit({ maxSize: maxBytes, onError: (c) => answer(c, `request body larger than ${maxBytes} bytes`) });
}
