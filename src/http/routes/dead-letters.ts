import { Hono } from 'hono';
import { AppError } from '../../errors.js';
import { DEAD_LETTER_ID, type DeadLetters } from '../../outbox/dead-letters.js';
import type { Outbox } from '../../outbox/queue.js';
import type { Slot } from '../../slot.js';
import { refusalResponse } from './refusal.js';

/**
 * /api/v1/outbox/dead-letters: the messages moved out of the queue because they kept ending
 * the connection. GET lists them (no payloads), GET /<id> shows one with its payload
 * (base64), POST /<id>/retry queues it again (at the end) and DELETE /<id> drops it.
 */
export function deadLetterRoutes(deps: { outbox: () => Outbox; deadLetters: Slot<DeadLetters> }) {
  const store = () => deps.deadLetters.current ?? raise(new AppError('unavailable', 'the outbox is not open yet'));
  const idOf = (id: string) => (DEAD_LETTER_ID.test(id) ? id : raise(new AppError('not_found', `no dead letter ${JSON.stringify(id.slice(0, 64))}`)));
  const find = async (id: string) => (await store().get(idOf(id))) ?? raise(new AppError('not_found', `no dead letter ${id}`));
  return new Hono()
    .get('/', (c) => {
      const letters = store().list();
      return c.json({ count: letters.length, deadLetters: letters });
    })
    .get('/:id', async (c) => {
      const { letter, message } = await find(c.req.param('id'));
      return c.json({ ...letter, payload: message.payload.toString('base64'), encoding: 'base64' });
    })
    .post('/:id/retry', async (c) => {
      const { letter, message } = await find(c.req.param('id'));
      const outbox = deps.outbox();
      try {
        const id = await outbox.enqueue(message);
        await store().remove(letter.id);
        return c.json({ accepted: true, id, depth: outbox.stats().depth }, 202);
      } catch (error) {
        return refusalResponse(c, error);
      }
    })
    .delete('/:id', async (c) => {
      if (!(await store().remove(idOf(c.req.param('id'))))) throw new AppError('not_found', `no dead letter ${c.req.param('id')}`);
      return c.json({ dropped: true });
    });
}

function raise(error: Error): never {
  throw error;
}
