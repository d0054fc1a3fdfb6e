import { Hono } from 'hono';
import type { AnyActorRef } from 'xstate';
import { healthView } from '../../views.js';

/** GET /health: 200 when every enabled concern is healthy, 503 with the reasons when not. */
export function healthRoutes(deps: { root: () => AnyActorRef | undefined }) {
  return new Hono().get('/', (c) => {
    const root = deps.root();
    if (!root) return c.json({ status: 'unhealthy', phase: 'starting', concerns: {}, reasons: ['supervisor: starting'] }, 503);
    const view = healthView(root);
    return c.json(view, view.status === 'ok' ? 200 : 503);
  });
}
