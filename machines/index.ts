import { deviceMachine } from './device.js';
import { devicesMachine } from './devices.js';
import { jobMachine } from './job.js';
import { jobsMachine } from './jobs.js';
import { linkMachine } from './link.js';
import { listenerMachine } from './listener.js';
import { outboxMachine } from './outbox.js';
import { supervisorMachine } from './supervisor.js';

export { deviceMachine, devicesMachine, jobMachine, jobsMachine, linkMachine, listenerMachine, outboxMachine, supervisorMachine };

/** Every machine by file name, for the diagram renderer and the tests. */
export const machines = {
  supervisor: supervisorMachine,
  link: linkMachine,
  listener: listenerMachine,
  outbox: outboxMachine,
  jobs: jobsMachine,
  job: jobMachine,
  devices: devicesMachine,
  device: deviceMachine,
};
