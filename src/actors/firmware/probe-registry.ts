import { fromPromise } from 'xstate';
import type { RegistryClient } from '../../firmware/registry.js';

/** The `probeRegistry` actor of the firmware chart: one cheap request (GET /v2/) during an outage. */
export function probeRegistryActor(ports: { registry: Pick<RegistryClient, 'ping'> }) {
  return fromPromise<void, void>(() => ports.registry.ping());
}
