import { alertMachine } from './alert.js';
import { alertsMachine } from './alerts.js';
import { firmwareMachine } from './firmware.js';
import { firmwareEntryMachine } from './firmware-entry.js';
import { deviceMachine } from './device.js';
import { devicesMachine } from './devices.js';
import { jobMachine } from './job.js';
import { jobsMachine } from './jobs.js';
import { linkMachine } from './link.js';
import { listenerMachine } from './listener.js';
import { monitorMachine } from './monitor.js';
import { outboxMachine } from './outbox.js';
import { supervisorMachine } from './supervisor.js';

export {
  alertMachine,
  alertsMachine,
  deviceMachine,
  devicesMachine,
  firmwareEntryMachine,
  firmwareMachine,
  jobMachine,
  jobsMachine,
  linkMachine,
  listenerMachine,
  monitorMachine,
  outboxMachine,
  supervisorMachine,
};

/** Every machine by file name, for the diagram renderer and the tests. */
export const machines = {
  supervisor: supervisorMachine,
  link: linkMachine,
  listener: listenerMachine,
  outbox: outboxMachine,
  jobs: jobsMachine,
  job: jobMachine,
  firmware: firmwareMachine,
  'firmware-entry': firmwareEntryMachine,
  devices: devicesMachine,
  device: deviceMachine,
  monitor: monitorMachine,
  alerts: alertsMachine,
  alert: alertMachine,
};
