import type { Context } from 'hono';
import { InvalidMessageError, OutboxFullError, StorageError } from '../../outbox/queue.js';

/** What the publisher is told when the outbox does not take a message. */
export function refusalResponse(c: Context, error: unknown) {
  if (error instanceof InvalidMessageError) return c.json({ error: 'bad_request', message: error.message }, 400);
  if (error instanceof OutboxFullError) return c.json({ error: 'outbox_full', message: error.message }, 503);
  if (error instanceof StorageError) {
    return error.code === 'disk_full'
      ? c.json({ error: 'insufficient_storage', message: error.message }, 507)
      : c.json({ error: 'storage_error', message: error.message }, 503);
  }
  throw error;
}
