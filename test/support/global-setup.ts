import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { Mosquitto } from './mosquitto.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** a mosquitto for tests that only need a broker: .ci/run's (EDGEVISOR_TEST_MQTT_URL) or one started here */
    mqttUrl: string;
  }
}

/** Builds the agent once for the tests that run it as a process, and provides a shared broker. */
export default async function setup(project: TestProject) {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  let own: Mosquitto | undefined;
  let url = process.env.EDGEVISOR_TEST_MQTT_URL;
  if (!url) {
    own = await Mosquitto.start();
    url = own.url;
  }
  project.provide('mqttUrl', url);
  return async () => {
    await own?.stop();
  };
}
