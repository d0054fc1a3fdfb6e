import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine, waitFor } from 'xstate';
import { jobsPorts, jobWith } from '../../../../src/actors/jobs/index.js';
import { ConfigSchema } from '../../../../src/config/schema.js';
import { executionKey } from '../../../../src/jobs/records.js';
import { createLogger } from '../../../../src/log.js';
import { Slot } from '../../../../src/slot.js';
import { groupMembers } from '../../../support/processes.js';

const root = mkdtempSync(join(tmpdir(), 'edgevisor-cancel-'));
const bin = mkdtempSync(join(root, 'bin-'));
/** A step that leaves a grandchild in its group: writes its group id, then waits for a background sleep. */
const hang = join(bin, 'hang.sh');
writeFileSync(hang, '#!/bin/sh\necho $$ > "$1"\nsleep 300 &\nwait\n');
chmodSync(hang, 0o755);

const alive = (pgid: number) => groupMembers(pgid).length > 0;

async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!check()) throw new Error(`never: ${what}`);
}

/** The real job chart with its real actors (direct mode: no MQTT needed before the result). */
function ports() {
  const stateDir = mkdtempSync(join(root, 'state-'));
  const config = ConfigSchema.parse({ thingName: 'cancel-test', stateDir, jobs: { allowlist: ['/bin/false', `${bin}/`], directStatus: true } });
  return jobsPorts({ config, session: new Slot<MqttClient>(), log: createLogger({ level: 'silent' }) });
}
const jobInput = (jobId: string, jobDocument: unknown) => ({
  execution: { jobId, executionNumber: 1, jobDocument },
  direct: true,
  retry: { minMs: 1000, maxMs: 8000 },
  jitterSeed: 1,
});

async function startedGroup(pidFile: string) {
  await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 'the step started');
  return Number(readFileSync(pidFile, 'utf8'));
}

function startJob(jobId: string, jobDocument: unknown) {
  const errors: unknown[] = [];
  const job = { ports: ports() };
  const actor = createActor(jobWith(job.ports), { input: jobInput(jobId, jobDocument) });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  return { actor, ports: job.ports, errors };
}

const step = (name: string, command: string, args: string[] = []) => ({ action: { name, type: 'runCommand', input: { command, args } } });

const hanging = (pidFile: string) => ({ version: '1.0', steps: [step('hang', hang, [pidFile])] });

describe.each([
  ['step', hanging],
  ['final-step', (pidFile: string) => ({ version: '1.0', steps: [step('fail', '/bin/false')], finalStep: step('hang', hang, [pidFile]) })],
])('a cancel while the %s runs', (name, document) => {
  it('kills its whole process group, and the record says CANCELED', async () => {
    const pidFile = join(root, `${name}.pid`);
    const job = startJob(`cancel-${name}`, document(pidFile));
    const pgid = await startedGroup(pidFile);
    expect(alive(pgid)).toBe(true);

    job.actor.send({ type: 'job.cancel', reason: 'CANCELED by the service', endedBy: 'CANCELED' });
    const end = await waitFor(job.actor, (s) => s.status === 'done', { timeout: 10_000 });
    expect(end.output).toMatchObject({ status: 'CANCELED', reason: 'CANCELED by the service' });
    await until(() => !alive(pgid), 'the group is gone'); // the sleep in the background too
    const record = (await job.ports.store.open()).get(executionKey(end.output!.jobId, 1));
    expect(record).toMatchObject({ state: 'done', status: 'CANCELED', endedBy: 'CANCELED' });
    expect(job.errors).toEqual([]);
  });
});

describe('the jobs concern stopping while a job runs', () => {
  it('kills the process group of the step (stopping the tree aborts the step actor signal)', async () => {
    const pidFile = join(root, 'stop.pid');
    const concern = createMachine({ invoke: { src: jobWith(ports()), id: 'job:stop', input: jobInput('stop', hanging(pidFile)) } });
    const actor = createActor(concern);
    actor.start();
    const pgid = await startedGroup(pidFile);
    expect(alive(pgid)).toBe(true);
    actor.stop();
    await until(() => !alive(pgid), 'the group is gone');
  });
});
