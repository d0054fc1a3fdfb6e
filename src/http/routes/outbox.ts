import { sValidator } from '@hono/standard-validator';
import { Hono } from 'hono';
import type { AnyActorRef } from 'xstate';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { topicName } from '../../mqtt/topic.js';
import { OutboxFullError, type Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';
import { limitBody } from '../body-limit.js';
import { firstIssue } from '../validation.js';

const PublishBody = z.strictObject({
  topic: topicName,
  payload: z.string(),
  qos: z.union([z.literal(0), z.literal(1)]).default(1),
  retain: z.boolean().default(false),
  /** "base64" for binary payloads */
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
});

export interface OutboxRouteDeps {
  outbox: Slot<Outbox>;
  root: () => AnyActorRef | undefined;
  maxPayloadBytes: number;
}

/**
 * POST /api/v1/publish: local applications send through the durable outbox (202 once the
 * message is on disk). GET /api/v1/outbox shows its counters; POST /api/v1/outbox/pause and
 * /resume hold delivery and let it go again.
 */
export function outboxRoutes(deps: OutboxRouteDeps) {
  const open = () => deps.outbox.current ?? raise(new AppError('unavailable', 'the outbox is not open yet'));
  const command = (type: 'outbox.pause' | 'outbox.resume') => {
    const outboxActor = deps.root()?.system.get('outbox');
    if (!outboxActor) throw new AppError('unavailable', 'the outbox is not running');
    outboxActor.send({ type });
  };
  return new Hono()
    .post(
      '/publish',
      // base64 makes a payload a third bigger, and JSON adds a little
      limitBody(Math.ceil(deps.maxPayloadBytes * 1.4) + 70_000, (c, message) => c.json({ error: 'too_large', message }, 413)),
      sValidator('json', PublishBody, (result, c) => {
        if (!result.success) return c.json({ error: 'bad_request', message: firstIssue(result.error) }, 400);
      }),
      async (c) => {
        const body = c.req.valid('json');
        const payload = Buffer.from(body.payload, body.encoding);
        if (payload.length > deps.maxPayloadBytes) {
          return c.json({ error: 'too_large', message: `payload is ${payload.length} bytes; outbox.maxPayloadBytes is ${deps.maxPayloadBytes}` }, 413);
        }
        const outbox = open();
        try {
          const id = await outbox.enqueue({ topic: body.topic, payload, qos: body.qos, retain: body.retain });
          return c.json({ accepted: true, id, depth: outbox.stats().depth }, 202);
        } catch (error) {
          if (error instanceof OutboxFullError) return c.json({ error: 'outbox_full', message: error.message }, 503);
          throw error;
        }
      },
    )
    .get('/outbox', (c) => c.json(open().stats()))
    .post('/outbox/pause', (c) => (command('outbox.pause'), c.json({ accepted: true }, 202)))
    .post('/outbox/resume', (c) => (command('outbox.resume'), c.json({ accepted: true }, 202)));
}

function raise(error: Error): never {
  throw error;
}
