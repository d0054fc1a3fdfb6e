import { Hono } from 'hono';
import type { AnyActorRef } from 'xstate';
import type { DeviceHub } from '../../devices/hub.js';
import type { KnownDevice } from '../../devices/known.js';
import type { ProfileStore } from '../../devices/profile-store.js';
import { devicesView } from '../../devices/view.js';

export interface DevicesRouteDeps {
  root: () => AnyActorRef | undefined;
  devices: { hub: DeviceHub; profiles: () => ProfileStore | undefined; known?: () => readonly KnownDevice[] };
}

/** GET /api/v1/devices: present and known devices with profile, state and counters; the profiles loaded and the files refused. */
export function devicesRoutes(deps: DevicesRouteDeps) {
  return new Hono().get('/', (c) => {
    const view = devicesView(deps.root()?.system.get('devices'), deps.devices.hub, deps.devices.known?.());
    const store = deps.devices.profiles();
    return c.json({
      ...view,
      profiles: store ? { dir: store.dir, loaded: [...store.profiles.keys()], errors: store.errors } : null,
    });
  });
}
