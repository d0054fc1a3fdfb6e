import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LocalJobsService, type ServiceExecution, type ServiceOptions } from '../../scripts/jobs-service.js';
import { runAgent } from '../support/agent.js';
import { posixSpawnAvailable } from '../../src/jobs/launch.js';
import { documentFuzzer } from '../support/fuzz-documents.js';
import { Mosquitto } from '../support/mosquitto.js';
import { freePort, waitFor } from '../support/ports.js';
import { groupMembers, running } from '../support/processes.js';
import { json } from '../support/tree.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A box with an allowlisted job directory, a handler directory and scripts that leave marks. */
function box() {
  const root = mkdtempSync(join(tmpdir(), 'edgevisor-jobs-it-'));
  const dirs = { jobs: join(root, 'jobs'), handlers: join(root, 'handlers'), outside: join(root, 'outside'), marks: join(root, 'marks') };
  for (const d of Object.values(dirs)) mkdirSync(d);
  const script = (dir: string, name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  // each run appends a line, so running twice shows
  script(dirs.jobs, 'mark.sh', `echo "run $2" >> "${dirs.marks}/$1"; echo "marked $1"`);
  script(dirs.jobs, 'fail.sh', 'echo "about to fail" >&2; exit 7');
  script(dirs.jobs, 'hang.sh', `sleep 300 & echo $! > "${dirs.marks}/$1.child"; echo $$ > "${dirs.marks}/$1.pid"; wait`);
  script(dirs.outside, 'mark.sh', `echo ran >> "${dirs.marks}/$1"`);
  script(dirs.handlers, 'hello.sh', 'echo "handler args: [$1] [$2]"');
  const runs = (mark: string) => (existsSync(join(dirs.marks, mark)) ? readFileSync(join(dirs.marks, mark), 'utf8').trim().split('\n').length : 0);
  const pidOf = (mark: string) => Number(readFileSync(join(dirs.marks, mark), 'utf8').trim());
  return { root, dirs, runs, pidOf };
}

const doc = (steps: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) => ({
  version: '1.0',
  steps: steps.map((action) => ({ action: { type: 'runCommand', ...action } })),
  ...extra,
});

async function setup(options: { broker?: string; config?: Record<string, unknown>; service?: ServiceOptions } = {}) {
  const b = box();
  const url = options.broker ?? inject('mqttUrl');
  const service = await LocalJobsService.start(url, options.service);
  cleanups.push(() => service.stop());
  const thingName = `jobs-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const port = await freePort();
  const config = {
    thingName,
    mqtt: { url, reconnectMinSeconds: 0.05, reconnectMaxSeconds: 0.3 },
    http: { port },
    jobs: { enabled: true, allowlist: [`${b.dirs.jobs}/`, '/bin/echo'], handlerDir: b.dirs.handlers, defaultTimeoutSeconds: 30, answerTimeoutSeconds: 1 },
    ...options.config,
  };
  const start = (stateDir?: string) => {
    const agent = runAgent({ config, stateDir });
    cleanups.push(async () => {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
      await agent.exited;
    });
    return agent;
  };
  const agent = start();
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200 || undefined, 'agent healthy');
  const finished = (jobId: string, executionNumber?: number, timeoutMs = 15_000) =>
    waitFor(
      () => {
        const e = service.execution(thingName, jobId, executionNumber);
        return e && ['SUCCEEDED', 'FAILED', 'REJECTED', 'CANCELED', 'TIMED_OUT'].includes(e.status) ? e : undefined;
      },
      `${jobId} to finish`,
      timeoutMs,
    ).catch((error) => {
      console.log(
        'DEBUG',
        JSON.stringify(agent.logs.filter((l) => l.ns === 'jobs' || l.ns === 'link')),
        JSON.stringify(service.requests),
        JSON.stringify(service.execution(thingName, jobId)),
      );
      throw error;
    });
  return { ...b, service, thingName, agent, start, finished, base: `http://127.0.0.1:${port}` };
}

const statuses = (e: ServiceExecution) => e.updates.map((u) => `${u.status}${u.accepted ? '' : ` (refused: ${u.code})`}`);

describe('jobs end to end (agent process, mosquitto, local jobs service)', () => {
  it('runs a job: IN_PROGRESS before anything runs, then SUCCEEDED with details within the limits', async () => {
    const t = await setup();
    t.service.createJob(
      t.thingName,
      'hello',
      doc([{ name: 'mark', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['hello', '1'] } }], { includeStdOut: true }),
    );
    const e = await t.finished('hello');
    expect(statuses(e)).toEqual(['IN_PROGRESS', 'SUCCEEDED']);
    expect(e.updates[0].statusDetails).toEqual({ step: 'mark', stepIndex: '1', stepCount: '1' });
    expect(e.statusDetails).toMatchObject({ step: 'mark', exitCode: '0', stdout: 'marked hello\n', stepsRun: '1' });
    expect(t.runs('hello')).toBe(1);
    // the record is marked done once the acknowledgement is in
    const record = await waitFor(async () => {
      const { jobs } = await json(await fetch(`${t.base}/api/v1/jobs`));
      return jobs[0]?.state === 'done' ? jobs[0] : undefined;
    }, 'the record to be done');
    expect(record).toMatchObject({ jobId: 'hello', executionNumber: 1, status: 'SUCCEEDED' });
    expect(t.agent.logs.filter((l) => l.ns === 'jobs' && l.jobId === 'hello').length).toBeGreaterThan(0);
  });

  it('a failing step: FAILED with the reason, exit code and stderr; a Device Client handler gets its argv', async () => {
    const t = await setup();
    t.service.createJob(t.thingName, 'fails', doc([{ name: 'broken', input: { command: `${t.dirs.jobs}/fail.sh` } }]));
    const failed = await t.finished('fails');
    expect(failed.status).toBe('FAILED');
    expect(failed.statusDetails).toMatchObject({ reason: 'step "broken" failed: exited with code 7', exitCode: '7', stderr: 'about to fail\n' });
    t.service.createJob(t.thingName, 'handler', {
      version: '1.0',
      includeStdOut: 'true',
      steps: [{ action: { name: 'h', type: 'runHandler', input: { handler: 'hello.sh', args: ['x'] } } }],
    });
    expect((await t.finished('handler')).statusDetails?.stdout).toBe('handler args: [] [x]\n');
  });

  it('refuses a command outside the allowlist and an invalid document: REJECTED with a reason, nothing runs', async () => {
    const t = await setup();
    t.service.createJob(t.thingName, 'outside', doc([{ name: 'sneaky', input: { command: `${t.dirs.outside}/mark.sh`, args: ['outside'] } }]));
    const refused = await t.finished('outside');
    expect(refused.status).toBe('REJECTED');
    expect(refused.statusDetails?.reason).toContain('is not in jobs.allowlist');
    expect(statuses(refused)).toEqual(['REJECTED']);
    expect(t.runs('outside')).toBe(0);
    // a valid first step does not run when a later step is refused
    t.service.createJob(
      t.thingName,
      'mixed',
      doc([
        { name: 'ok', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['mixed', '1'] } },
        { name: 'bad', input: { command: '/bin/sh', args: ['-c', 'true'] } },
      ]),
    );
    expect((await t.finished('mixed')).status).toBe('REJECTED');
    expect(t.runs('mixed')).toBe(0);
    t.service.createJob(t.thingName, 'invalid', { version: '1.0', steps: [] });
    const invalid = await t.finished('invalid');
    expect(invalid.statusDetails?.reason).toBe('invalid job document: steps must be a non-empty array');
    await waitFor(
      async () => /edgevisor_jobs_total\{status="REJECTED"\} 3\n/.test(await (await fetch(`${t.base}/metrics`)).text()) || undefined,
      'REJECTED counted',
    );
    expect(await (await fetch(`${t.base}/metrics`)).text()).toContain('edgevisor_job_refusals_total 3');
  });

  it('reports the step that decided the outcome, not an ignored failure, and with includeStdOut one stdout tail across all steps', async () => {
    const t = await setup();
    const probe = { name: 'probe', input: { command: `${t.dirs.jobs}/fail.sh` }, ignoreStepFailure: true };
    t.service.createJob(
      t.thingName,
      'tolerant',
      doc(
        [
          { name: 'first', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['tolerant', '1'] } },
          probe,
          { name: 'install', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['tolerant', '2'] } },
        ],
        { includeStdOut: true },
      ),
    );
    const ok = await t.finished('tolerant');
    expect(ok.status).toBe('SUCCEEDED');
    expect(ok.statusDetails).toMatchObject({ step: 'install', exitCode: '0', stepsRun: '3', stdout: 'marked tolerant\nmarked tolerant\n' });
    expect(ok.statusDetails?.stderr).toBeUndefined();
    t.service.createJob(
      t.thingName,
      'broken',
      doc([
        probe,
        { name: 'install', input: { command: '/bin/echo', args: ['x'] }, allowStdErr: 0 },
        { name: 'real', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['broken'], timeout: 1 } },
      ]),
    );
    const failed = await t.finished('broken');
    expect(failed.status).toBe('FAILED');
    expect(failed.statusDetails).toMatchObject({ reason: 'step "real" failed: timed out after 1 s', step: 'real', signal: 'SIGTERM' });
    expect(failed.statusDetails?.exitCode).toBeUndefined();
  });

  it('asks the service nothing it need not: no describe after rejecting a document, one $next/get per job when idle', async () => {
    const t = await setup();
    const requestsOf = (api: string) => t.service.requests.filter((r) => r.thingName === t.thingName && r.api === api).length;
    const idle = () =>
      waitFor(async () => {
        const jobs = (await json(await fetch(`${t.base}/api/v1/state`))).tree.children.find((c: { id: string }) => c.id === 'jobs');
        return jobs.state === 'idle' || undefined;
      }, 'the jobs concern to be idle');
    await idle();
    const before = requestsOf('$next/get');
    const jobs = [
      ['bad-1', { version: '1.0', steps: [] }],
      ['good-1', doc([{ name: 's', input: { command: '/bin/echo', args: ['1'] } }])],
      ['bad-2', doc([{ name: 'x', input: { command: '/bin/echo', args: ['a\u001bb'] } }])],
      ['good-2', doc([{ name: 's', input: { command: '/bin/echo', args: ['2'] } }])],
      ['bad-3', { version: '2.0', steps: [] }],
    ] as const;
    for (const [jobId, document] of jobs) {
      t.service.createJob(t.thingName, jobId, document);
      expect((await t.finished(jobId)).status).toBe(jobId.startsWith('bad') ? 'REJECTED' : 'SUCCEEDED');
      await idle();
    }
    // a last job, run to its end: whatever the agent would still ask about the others is asked by now
    t.service.createJob(t.thingName, 'last', doc([{ name: 's', input: { command: '/bin/echo', args: ['3'] } }]));
    await t.finished('last');
    await idle();
    for (const [jobId] of jobs) expect(requestsOf(`${jobId}/get`), `describes of ${jobId}`).toBe(0);
    expect(requestsOf('$next/get') - before).toBe(jobs.length + 1);
  });

  it('runs queued jobs one at a time, each exactly once; a redelivered notification runs nothing again; a retry runs', async () => {
    const t = await setup();
    for (const id of ['one', 'two', 'three']) {
      t.service.createJob(t.thingName, id, doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['order', id] } }]));
    }
    await t.finished('three');
    expect(readFileSync(join(t.dirs.marks, 'order'), 'utf8').trim().split('\n')).toEqual(['run one', 'run two', 'run three']);
    t.service.renotify(t.thingName);
    t.service.createJob(t.thingName, 'four', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['order', 'four'] } }]));
    await t.finished('four');
    expect(t.runs('order')).toBe(4);
    // the service retries "one": a new execution number, so it runs again
    t.service.createJob(t.thingName, 'one', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['order', 'one-again'] } }]));
    expect((await t.finished('one', 2)).status).toBe('SUCCEEDED');
    expect(t.runs('order')).toBe(5);
  });

  it('a step timeout kills the whole process group and fails the job; the next job runs', async () => {
    const t = await setup();
    t.service.createJob(t.thingName, 'slow', doc([{ name: 'hang', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['slow'], timeout: 1 } }]));
    const e = await t.finished('slow');
    expect(e.status).toBe('FAILED');
    expect(e.statusDetails?.reason).toBe('step "hang" failed: timed out after 1 s');
    expect(await (await fetch(`${t.base}/metrics`)).text()).toContain('edgevisor_job_step_timeouts_total 1');
    await waitFor(() => (!running(t.pidOf('slow.pid')) && !running(t.pidOf('slow.child'))) || undefined, 'the group to be gone', 5000);
  });

  it('a job canceled by the service while it runs: its process group is killed and the next job proceeds', async () => {
    const t = await setup();
    t.service.createJob(t.thingName, 'long', doc([{ name: 'hang', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['long'] } }]));
    await waitFor(() => existsSync(join(t.dirs.marks, 'long.child')) || undefined, 'the job to run');
    // while it runs, the job is an actor of its own in the tree
    const tree = (await json(await fetch(`${t.base}/api/v1/state`))).tree;
    const jobs = tree.children.find((c: { id: string }) => c.id === 'jobs');
    const job = jobs.children.find((c: { id: string }) => c.id === 'job:long');
    expect(job).toMatchObject({ state: { running: 'step' }, tags: ['busy'], context: { step: 0, execution: { jobId: 'long', executionNumber: 1 } } });
    t.service.end(t.thingName, 'long', 'CANCELED');
    await waitFor(() => (!running(t.pidOf('long.pid')) && !running(t.pidOf('long.child'))) || undefined, 'the canceled group to be gone', 5000);
    const { jobs: records } = await json(await fetch(`${t.base}/api/v1/jobs`));
    expect(records.find((j: { jobId: string }) => j.jobId === 'long')).toMatchObject({ state: 'done', status: 'CANCELED', endedBy: 'ended' });
    t.service.createJob(t.thingName, 'after', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['after', '1'] } }]));
    expect((await t.finished('after')).status).toBe('SUCCEEDED');
    expect(statuses(t.service.execution(t.thingName, 'long')!)).toEqual(['IN_PROGRESS']);
  });

  it('a job timed out by the service (its in-progress timer) while it runs: its group is killed, nothing is reported for it, the next job runs', async () => {
    // one service "minute" lasts 5 s here: time enough for the job to start on a loaded box
    const t = await setup({ service: { minuteMs: 5000 } });
    t.service.createJob(t.thingName, 'overdue', doc([{ name: 'hang', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['overdue'] } }]), {
      timeoutConfig: { inProgressTimeoutInMinutes: 1 },
    });
    t.service.createJob(t.thingName, 'behind', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['behind', '1'] } }]));
    await waitFor(() => existsSync(join(t.dirs.marks, 'overdue.child')) || undefined, 'the job to run');
    const pgid = t.pidOf('overdue.pid'); // hang.sh leads its own group
    expect(groupMembers(pgid).length).toBeGreaterThan(0);
    const e = await t.finished('overdue', undefined, 20_000);
    expect(e.status).toBe('TIMED_OUT');
    await waitFor(() => groupMembers(pgid).length === 0 || undefined, 'the timed-out group to be gone', 5000);
    expect(running(t.pidOf('overdue.child'))).toBe(false);
    expect((await t.finished('behind')).status).toBe('SUCCEEDED');
    expect(t.runs('behind')).toBe(1);
    // the agent sent no terminal update after the service's own, so none was refused or retried
    expect(statuses(t.service.execution(t.thingName, 'overdue')!)).toEqual(['IN_PROGRESS']);
    const { jobs } = await json(await fetch(`${t.base}/api/v1/jobs`));
    expect(jobs.find((j: { jobId: string }) => j.jobId === 'overdue')).toMatchObject({ state: 'done', status: 'CANCELED', endedBy: 'ended' });
    expect(t.agent.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    expect(t.agent.child.exitCode).toBeNull();
  });

  it("a job the service times out while its result is on the way: the refused result is neither retried nor counted as the job's outcome; the next job runs", async () => {
    const t = await setup();
    t.service.ignoreTerminalUpdates = true; // the result goes unanswered until the service has ended the execution
    t.service.createJob(t.thingName, 'racy', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['racy', '1'] } }]));
    t.service.createJob(t.thingName, 'behind', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['behind', '1'] } }]));
    // the result computed and on its way (stored, unanswered): now the service's timer runs out
    const file = join(t.agent.stateDir, 'jobs-inflight.jsonl');
    await waitFor(() => (existsSync(file) && readFileSync(file, 'utf8').includes('"state":"reporting"')) || undefined, 'the result to be on its way');
    t.service.end(t.thingName, 'racy', 'TIMED_OUT');
    t.service.ignoreTerminalUpdates = false;
    expect((await t.finished('behind', undefined, 20_000)).status).toBe('SUCCEEDED');
    const racy = t.service.execution(t.thingName, 'racy')!;
    expect(racy.status).toBe('TIMED_OUT');
    expect(statuses(racy)).toEqual(['IN_PROGRESS', 'SUCCEEDED (refused: InvalidStateTransition)']);
    const { jobs } = await json(await fetch(`${t.base}/api/v1/jobs`));
    expect(jobs.find((j: { jobId: string }) => j.jobId === 'racy')).toMatchObject({ state: 'done', status: 'SUCCEEDED', endedBy: 'TIMED_OUT' });
    const metrics = await (await fetch(`${t.base}/metrics`)).text();
    expect(metrics).toContain('edgevisor_jobs_total{status="CANCELED"} 1\n');
    expect(metrics).toContain('edgevisor_jobs_total{status="SUCCEEDED"} 1\n');
    expect(t.agent.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
    expect(t.runs('racy')).toBe(1);
  });

  it('reports each later step with a further IN_PROGRESS naming it, visible while it runs, before the terminal update', async () => {
    const t = await setup();
    t.service.createJob(
      t.thingName,
      'steps',
      doc(
        [
          { name: 'first', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['steps', 'first'] } },
          { name: 'second', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['steps'], timeout: 1 } },
        ],
        { finalStep: { action: { name: 'cleanup', type: 'runCommand', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['steps', 'cleanup'] } } } },
      ),
    );
    // while the second step runs, the service shows it
    await waitFor(() => existsSync(join(t.dirs.marks, 'steps.child')) || undefined, 'the second step to run');
    const during = await waitFor(
      () =>
        t.service.execution(t.thingName, 'steps')?.statusDetails?.step === 'second' ? t.service.execution(t.thingName, 'steps')!.statusDetails : undefined,
      'the progress of the second step',
    );
    expect(during).toEqual({ step: 'second', stepIndex: '2', stepCount: '3' });
    const e = await t.finished('steps');
    expect(e.status).toBe('FAILED');
    expect(statuses(e)).toEqual(['IN_PROGRESS', 'IN_PROGRESS', 'IN_PROGRESS', 'FAILED']);
    expect(e.updates.map((u) => u.statusDetails).slice(0, 3)).toEqual([
      { step: 'first', stepIndex: '1', stepCount: '3' },
      { step: 'second', stepIndex: '2', stepCount: '3' },
      { step: 'cleanup', stepIndex: '3', stepCount: '3' },
    ]);
    expect(e.statusDetails?.reason).toBe('step "second" failed: timed out after 1 s');
    expect(t.runs('steps')).toBe(2);
  });

  it('jobs.directStatus: a job of several steps goes QUEUED → SUCCEEDED with no IN_PROGRESS at all, progress included', async () => {
    const t = await setup({ config: { jobs: { enabled: true, allowlist: ['/bin/echo'], directStatus: true, answerTimeoutSeconds: 1 } } });
    t.service.createJob(
      t.thingName,
      'direct',
      doc([
        { name: 'one', input: { command: '/bin/echo', args: ['1'] } },
        { name: 'two', input: { command: '/bin/echo', args: ['2'] } },
      ]),
    );
    const e = await t.finished('direct');
    expect(statuses(e)).toEqual(['SUCCEEDED']);
    expect(e.statusDetails).toMatchObject({ step: 'two', stepsRun: '2' });
  });

  it('kill -9 mid-job: the restarted agent kills what was left, reports FAILED "interrupted" and never re-runs it', async () => {
    const t = await setup();
    t.service.createJob(t.thingName, 'crash', doc([{ name: 'hang', input: { command: `${t.dirs.jobs}/hang.sh`, args: ['crash'] } }]));
    await waitFor(() => existsSync(join(t.dirs.marks, 'crash.child')) || undefined, 'the job to run');
    // the group in the record on disk: what the restarted agent goes by
    const journal = join(t.agent.stateDir, 'jobs-inflight.jsonl');
    await waitFor(() => readFileSync(journal, 'utf8').includes('"group"') || undefined, 'the group to be recorded');
    t.agent.child.kill('SIGKILL');
    await t.agent.exited;
    expect(running(t.pidOf('crash.child'))).toBe(true); // a detached group survives its agent…
    const again = t.start(t.agent.stateDir);
    const e = await t.finished('crash');
    expect(e.status).toBe('FAILED');
    expect(e.statusDetails?.reason).toMatch(/^interrupted/);
    // …until the restarted agent ends it (SIGKILL lands a moment after kill() returns)
    await waitFor(() => !running(t.pidOf('crash.child')) || undefined, 'the leftover to be killed', 3000);
    expect(
      readdirSync(t.dirs.marks)
        .filter((f) => f.startsWith('crash'))
        .sort(),
    ).toEqual(['crash.child', 'crash.pid']);
    expect(again.logs.some((l) => l.msg === 'killed what the interrupted job left running')).toBe(true);
  });

  it('a terminal update whose answer was lost is sent again, and "already SUCCEEDED" counts as delivered', async () => {
    const t = await setup();
    t.service.loseUpdateAnswers = true;
    t.service.createJob(t.thingName, 'lost', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['lost', '1'] } }]));
    await t.finished('lost');
    const e = t.service.execution(t.thingName, 'lost')!;
    await waitFor(() => e.updates.some((u) => u.code === 'InvalidStateTransition') || undefined, 'the second send');
    expect(statuses(e).slice(0, 3)).toEqual(['IN_PROGRESS', 'SUCCEEDED', 'SUCCEEDED (refused: InvalidStateTransition)']);
    await waitFor(async () => (await json(await fetch(`${t.base}/api/v1/jobs`))).jobs[0]?.state === 'done' || undefined, 'the record to be done');
    expect(t.runs('lost')).toBe(1);
  });

  it('a result computed but not acknowledged before a kill -9 is sent after the restart, not computed again', async () => {
    const t = await setup();
    t.service.ignoreTerminalUpdates = true;
    t.service.createJob(
      t.thingName,
      'pending',
      doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['pending', '1'] } }], { includeStdOut: true }),
    );
    // on disk, not only in memory: that is what a kill -9 leaves
    const file = join(t.agent.stateDir, 'jobs-inflight.jsonl');
    const onDisk = () => JSON.parse(readFileSync(file, 'utf8').trim().split('\n').at(-1) || '{}').state;
    await waitFor(() => (existsSync(file) && onDisk() === 'reporting') || undefined, 'the result to be computed and stored');
    expect(t.runs('pending')).toBe(1);
    t.agent.child.kill('SIGKILL');
    await t.agent.exited;
    t.service.ignoreTerminalUpdates = false;
    t.start(t.agent.stateDir);
    const e = await t.finished('pending');
    expect(e.status).toBe('SUCCEEDED');
    expect(e.statusDetails?.stdout).toBe('marked pending\n');
    expect(t.runs('pending')).toBe(1);
  });

  it('fuzz: 300 generated and mutated documents each end refused with a reason or run, and the agent keeps going', async () => {
    const t = await setup();
    const next = documentFuzzer(777);
    // JSON round trip: what travels over MQTT (undefined and holes do not)
    const docs = Array.from({ length: 300 }, () => JSON.parse(JSON.stringify(next() ?? null)));
    for (const [i, d] of docs.entries()) t.service.createJob(t.thingName, `fuzz-${i}`, d);
    const outcomes = await waitFor(
      () => {
        const all = docs.map((_, i) => t.service.execution(t.thingName, `fuzz-${i}`)!);
        return all.every((e) => ['SUCCEEDED', 'FAILED', 'REJECTED'].includes(e.status)) ? all : undefined;
      },
      'all 300 to end',
      90_000,
    );
    for (const e of outcomes) {
      if (e.status !== 'SUCCEEDED') expect(e.statusDetails?.reason, `${e.jobId}: ${JSON.stringify(e.jobDocument)}`).toMatch(/./);
      expect(
        e.updates.every((u) => u.accepted),
        `${e.jobId} updates within the limits`,
      ).toBe(true);
    }
    const count = (s: string) => outcomes.filter((e) => e.status === s).length;
    console.log(`jobs fuzz: ${count('SUCCEEDED')} succeeded, ${count('FAILED')} failed, ${count('REJECTED')} rejected`);
    expect(count('REJECTED')).toBeGreaterThan(0);
    expect(count('SUCCEEDED')).toBeGreaterThan(0);
    expect(t.agent.child.exitCode).toBeNull();
  }, 120_000);

  it('after a broker restart (session lost) it asks again and runs what was queued meanwhile', async () => {
    const broker = await Mosquitto.start();
    cleanups.push(() => broker.stop());
    const t = await setup({ broker: broker.url });
    await broker.stop();
    await broker.resume();
    t.service.createJob(t.thingName, 'later', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['later', '1'] } }]));
    expect((await t.finished('later', undefined, 20_000)).status).toBe('SUCCEEDED');
  });
});

describe('job launchers (config jobs.launcher)', () => {
  const launcherOf = async (base: string) => {
    const tree = (await json(await fetch(`${base}/api/v1/state`))).tree;
    const metrics = await (await fetch(`${base}/metrics`)).text();
    return {
      state: tree.children.find((c: { id: string }) => c.id === 'jobs').context.launcher,
      metric: /edgevisor_jobs_launcher_info\{launcher="([^"]+)"\} 1/.exec(metrics)?.[1],
    };
  };

  it('child_process by default, shown on /api/v1/state and /metrics', async () => {
    const t = await setup();
    expect(await launcherOf(t.base)).toEqual({ state: 'child_process', metric: 'child_process' });
    t.service.createJob(t.thingName, 'plain', doc([{ name: 's', input: { command: `${t.dirs.jobs}/mark.sh`, args: ['plain', '1'] } }]));
    expect((await t.finished('plain')).status).toBe('SUCCEEDED');
  });

  it.runIf(posixSpawnAvailable())('posix_spawn when configured (and built): jobs run with it, and it shows', async () => {
    const t = await setup({ config: { jobs: { enabled: true, allowlist: ['/bin/echo'], launcher: 'posix_spawn', answerTimeoutSeconds: 1 } } });
    expect(await launcherOf(t.base)).toEqual({ state: 'posix_spawn', metric: 'posix_spawn' });
    t.service.createJob(t.thingName, 'spawned', doc([{ name: 's', input: { command: '/bin/echo', args: ['via posix_spawn'] } }], { includeStdOut: true }));
    expect((await t.finished('spawned')).statusDetails?.stdout).toBe('via posix_spawn\n');
  });

  it('posix_spawn configured where its addon is not built: the agent refuses to start, with a one-line reason', async () => {
    // the bundle alone, where no spawn.node can be found beside it
    const root = join(import.meta.dirname, '../../dist/test-no-native', String(process.pid));
    rmSync(root, { recursive: true, force: true });
    cpSync(join(import.meta.dirname, '../../dist/bundle'), join(root, 'x/bundle'), { recursive: true });
    try {
      const agent = runAgent({
        entry: join(root, 'x/bundle/main.js'),
        config: {
          thingName: 'no-native',
          mqtt: { url: inject('mqttUrl') },
          http: { port: await freePort() },
          jobs: { enabled: true, launcher: 'posix_spawn' },
        },
      });
      expect((await agent.exited).code).toBe(2);
      expect(agent.stderr().trim().split('\n')).toEqual([
        expect.stringMatching(/^edgevisor: jobs\.launcher is "posix_spawn" but the posix_spawn addon is not built \(npm run build:native/),
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
