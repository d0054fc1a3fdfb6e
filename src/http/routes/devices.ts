import { sValidator } from '@hono/standard-validator';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AnyActorRef } from 'xstate';
import { z } from 'zod';
import type { WriteRefusal } from '../../../machines/device.js';
import type { DeviceHub } from '../../devices/hub.js';
import type { KnownDevice } from '../../devices/known.js';
import type { ProfileStore } from '../../devices/profile-store.js';
import { devicesView } from '../../devices/view.js';
import type { DeviceWriter } from '../../devices/writer.js';
import { firstIssue } from '../validation.js';

export interface DevicesRouteDeps {
  root: () => AnyActorRef | undefined;
  devices: { hub: DeviceHub; profiles: () => ProfileStore | undefined; known?: () => readonly KnownDevice[]; writer?: DeviceWriter };
}

const WriteBody = z.strictObject({
  command: z.string().describe('the command text; the profile adds its line ending'),
});

/** The HTTP status of each refusal of a write. */
export const writeStatus: Record<WriteRefusal, ContentfulStatusCode> = {
  unavailable: 503,
  unknown_device: 404,
  not_open: 409,
  not_writable: 403,
  bad_command: 400,
  not_allowed: 403,
  too_large: 413,
  busy: 409,
  rate_limited: 429,
  write_failed: 502,
  port_closed: 502,
  timeout: 504,
};

/**
 * GET /api/v1/devices: present and known devices with profile, state and counters; the
 * profiles loaded and the files refused. POST /api/v1/devices/<id>/write {"command"}: a
 * command to a device, answered 200 {accepted: true, ...} once written, or with the refusal's
 * status and {accepted: false, reason, message}.
 */
export function devicesRoutes(deps: DevicesRouteDeps) {
  const app = new Hono().get('/', (c) => {
    const view = devicesView(deps.root()?.system.get('devices'), deps.devices.hub, deps.devices.known?.());
    const store = deps.devices.profiles();
    return c.json({
      ...view,
      profiles: store ? { dir: store.dir, loaded: [...store.profiles.keys()], errors: store.errors } : null,
    });
  });
  const writer = deps.devices.writer;
  if (!writer) return app;
  return app.post(
    '/:id/write',
    bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ accepted: false, reason: 'too_large', message: 'request body too large' }, 413) }),
    sValidator('json', WriteBody, (result, c) => {
      if (!result.success) return c.json({ accepted: false, reason: 'bad_command', message: firstIssue(result.error) }, 400);
    }),
    async (c) => {
      const result = await writer.write(c.req.param('id'), c.req.valid('json').command, 'http');
      return c.json(result, result.accepted ? 200 : writeStatus[result.reason]);
    },
  );
}
