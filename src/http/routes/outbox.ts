import { sValidator } from '@hono/standard-validator';
import { Hono } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AnyActorRef } from 'xstate';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { isWellFormed, topicName } from '../../mqtt/topic.js';
import type { DeadLetters } from '../../outbox/dead-letters.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';
import { limitBody } from '../body-limit.js';
import { firstIssue } from '../validation.js';
import { deadLetterRoutes } from './dead-letters.js';
import { refusalResponse } from './refusal.js';

/** Standard base64 (RFC 4648 section 4), padding optional: anything else is refused, not decoded to something else. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

const PublishBody = z
  .strictObject({
    topic: topicName,
    payload: z.string(),
    qos: z.union([z.literal(0), z.literal(1)]).default(1),
    retain: z.boolean().default(false),
    /** "base64" for binary payloads */
    encoding: z.enum(['utf8', 'base64']).default('utf8'),
  })
  .refine((b) => b.encoding !== 'base64' || BASE64.test(b.payload), { message: 'is not valid base64', path: ['payload'] })
  .refine((b) => b.encoding !== 'utf8' || isWellFormed(b.payload), {
    message: 'must be valid Unicode (it holds a lone surrogate); send binary payloads with "encoding": "base64"',
    path: ['payload'],
  });

export interface OutboxRouteDeps {
  outbox: Slot<Outbox>;
  deadLetters?: Slot<DeadLetters>;
  root: () => AnyActorRef | undefined;
  maxPayloadBytes: number;
}

/** JSON is UTF-8 (RFC 8259): a body that is not would be decoded with U+FFFD in place of its bad bytes. */
const utf8Body = createMiddleware(async (c, next) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(await c.req.arrayBuffer());
  } catch {
    return c.json({ error: 'bad_request', message: 'the request body is not valid UTF-8' }, 400);
  }
  await next();
});

/**
 * POST /api/v1/publish: local applications send through the durable outbox (202 once the
 * message is written and synced; 400 for a message that could never be delivered, 503 when
 * the queue is full, 507 when the disk is). GET /api/v1/outbox shows its counters; POST
 * /api/v1/outbox/pause and /resume hold delivery and let it go again; /outbox/dead-letters
 * lists, retries and drops the messages moved aside.
 */
export function outboxRoutes(deps: OutboxRouteDeps) {
  const open = () => deps.outbox.current ?? raise(new AppError('unavailable', 'the outbox is not open yet'));
  const command = (type: 'outbox.pause' | 'outbox.resume') => {
    const outboxActor = deps.root()?.system.get('outbox');
    if (!outboxActor) throw new AppError('unavailable', 'the outbox is not running');
    outboxActor.send({ type });
  };
  const app = new Hono()
    .post(
      '/publish',
      // base64 makes a payload a third bigger, and JSON adds a little
      limitBody(Math.ceil(deps.maxPayloadBytes * 1.4) + 70_000, (c, message) => c.json({ error: 'too_large', message }, 413)),
      utf8Body,
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
          return refusalResponse(c, error);
        }
      },
    )
    .get('/outbox', (c) => c.json(open().stats()))
    .post('/outbox/pause', (c) => (command('outbox.pause'), c.json({ accepted: true }, 202)))
    .post('/outbox/resume', (c) => (command('outbox.resume'), c.json({ accepted: true }, 202)));
  if (deps.deadLetters) app.route('/outbox/dead-letters', deadLetterRoutes({ outbox: open, deadLetters: deps.deadLetters }));
  return app;
}

function raise(error: Error): never {
  throw error;
}
