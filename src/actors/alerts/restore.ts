import { fromPromise } from 'xstate';
import type { AlertRecord } from '../../../machines/alerts.js';
import type { AlertStore } from '../../alerts/store.js';

/** The alerts manager's `restoreAlerts`: the alert states the previous run left in alerts.json. */
export function restoreAlertsActor(ports: { store: () => Promise<AlertStore> }) {
  return fromPromise<Record<string, AlertRecord>, void>(async () => (await ports.store()).states());
}
