import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  // Every temporary file of the run (tests, agents, brokers) goes under one directory, removed at
  // the end: the workers and what they start inherit TMPDIR, which os.tmpdir() reads.
  const runTmp = mkdtempSync(join(tmpdir(), 'edgevisor-test-'));
  chmodSync(runTmp, 0o755); // as /tmp is to them: the tests that run a step as another user need to reach it
  process.env.TMPDIR = runTmp;
  let own: Mosquitto | undefined;
  let url = process.env.EDGEVISOR_TEST_MQTT_URL;
  if (!url) {
    own = await Mosquitto.start();
    url = own.url;
  }
  project.provide('mqttUrl', url);
  return async () => {
    await own?.stop();
    rmSync(runTmp, { recursive: true, force: true });
  };
}
