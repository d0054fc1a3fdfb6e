/** Every machine, for the runtime, the diagram renderer and the tests. */
export { supervisorMachine } from './supervisor.js';
export { linkMachine } from './link.js';
export { listenerMachine } from './listener.js';
