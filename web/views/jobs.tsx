import { describe, useLive } from '../live.js';
import { Card, Facts, fmtDate, fmtDuration, useFetched } from './common.js';

interface JobRecord {
  key: string;
  jobId: string;
  executionNumber: number;
  state: string;
  status?: string;
  reason?: string | null;
  endedBy?: string;
  statusDetails?: Record<string, string>;
  receivedAt: number;
  finishedAt?: number;
}

export function Jobs() {
  const { tree } = useLive();
  const jobs = tree?.children.find((c) => c.id === 'jobs');
  const running = jobs?.children.find((c) => c.id.startsWith('job:'));
  // re-read the history when the jobs actor or its running job changes, not on a timer
  const version = `${describe(jobs?.state ?? null)}|${jobs?.context?.finished}|${running?.id}|${describe(running?.state ?? null)}`;
  const { data, error, missing } = useFetched<{ jobs: JobRecord[] }>(jobs ? '/api/v1/jobs' : null, version);
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  if (!jobs)
    return (
      <Card title="Jobs" testid="jobs">
        <p class="muted">The jobs concern is not enabled on this agent (jobs.enabled).</p>
      </Card>
    );
  const ctx = running?.context ?? {};
  const step = ctx.plan?.steps?.[ctx.step]?.name ?? (ctx.plan?.finalStep && ctx.step >= (ctx.plan?.steps?.length ?? 0) ? ctx.plan.finalStep.name : null);
  return (
    <div class="stack">
      <Card title="Running" testid="job-running">
        {running ? (
          <Facts
            rows={[
              ['job', <code>{ctx.execution?.jobId ?? running.id}</code>],
              ['state', describe(running.state)],
              ['step', step ? `${ctx.step + 1}: ${step}` : '–'],
              ['steps done', (ctx.results ?? []).length],
            ]}
          />
        ) : (
          <p class="muted">
            No job is running. Jobs service: {describe(jobs.state)}
            {jobs.context?.lastError ? ` (${jobs.context.lastError.message})` : ''}
          </p>
        )}
      </Card>
      <Card title="History" testid="job-history">
        {error && !missing && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {!data ? (
          <p class="muted">Loading…</p>
        ) : data.jobs.length === 0 ? (
          <p class="muted">No job has run on this agent yet.</p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th>job</th>
                  <th>status</th>
                  <th>reason</th>
                  <th>received</th>
                  <th>duration</th>
                  <th>output</th>
                </tr>
              </thead>
              <tbody>
                {data.jobs.map((j) => (
                  <tr data-job={j.jobId}>
                    <td>
                      <code>{j.jobId}</code>
                      {j.executionNumber > 1 && <span class="muted"> #{j.executionNumber}</span>}
                    </td>
                    <td>
                      <span class={`badge status-${(j.status ?? j.state).toLowerCase()}`}>{j.status ?? j.state}</span>
                      {j.endedBy && <div class="muted small">ended by {j.endedBy}</div>}
                    </td>
                    <td>{j.reason ?? '–'}</td>
                    <td>{fmtDate(j.receivedAt)}</td>
                    <td>{j.finishedAt ? fmtDuration(j.finishedAt - j.receivedAt) : '–'}</td>
                    <td>
                      <Output details={j.statusDetails} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </div>
  );
}

function Output({ details }: { details?: Record<string, string> }) {
  const entries = Object.entries(details ?? {});
  if (entries.length === 0) return <span class="muted">–</span>;
  return (
    <details>
      <summary>
        {entries.length} field{entries.length > 1 ? 's' : ''}
      </summary>
      {entries.map(([k, v]) => (
        <div>
          <div class="muted small">{k}</div>
          <pre class="output">{v}</pre>
        </div>
      ))}
    </details>
  );
}
