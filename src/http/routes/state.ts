import { Hono } from 'hono';
import type { AnyActorRef } from 'xstate';
import { AppError } from '../../errors.js';
import { stateView } from '../../views.js';

/** GET /api/v1/state: the actor tree as plain JSON. */
export function stateRoutes(deps: { root: () => AnyActorRef | undefined }) {
  return new Hono().get('/', (c) => {
    const root = deps.root();
    if (!root) throw new AppError('unavailable', 'the supervisor has not started yet');
    return c.json(stateView(root));
  });
}
