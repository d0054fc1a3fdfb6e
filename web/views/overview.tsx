import { useState } from 'preact/hooks';
import { post } from '../api.js';
import { describe, live, useLive, type Actor } from '../live.js';
import { Card, Facts, fmtBytes, fmtDate } from './common.js';

/** Every concern of the supervisor, in its order, with its region's state (up, restarting, gaveUp, disabled). */
function concerns(root: Actor) {
  const regions = (typeof root.state === 'object' && root.state && typeof root.state.running === 'object' ? root.state.running : {}) as Record<string, string>;
  const context = root.context ?? {};
  return Object.entries(regions).map(([name, region]) => ({
    name,
    region,
    actor: root.children.find((c) => c.id === name),
    restarts: (context.restarts?.[name] as number) ?? 0,
    crash: (context.lastCrash?.[name]?.message as string | undefined) ?? null,
  }));
}

/** How often the link came back online, as seen since this page opened. */
function reconnectsSeen(): number {
  const list = live.transitions.get('supervisor/link') ?? [];
  return list.filter((t) => t.to.endsWith('online') && t.from !== '(new)').length;
}

export function Overview() {
  const { tree } = useLive();
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  const rows = concerns(tree);
  const link = tree.children.find((c) => c.id === 'link');
  const outbox = tree.children.find((c) => c.id === 'outbox');
  return (
    <div class="grid">
      <Card title="Concerns" testid="concerns">
        <table>
          <thead>
            <tr>
              <th>concern</th>
              <th>state</th>
              <th>restarts</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => {
              const healthy = c.actor?.tags.includes('healthy');
              const mark =
                c.region === 'disabled' ? 'disabled' : c.region === 'gaveUp' ? 'gaveUp' : c.region === 'restarting' ? 'degraded' : healthy ? 'ok' : 'unhealthy';
              return (
                <tr data-concern={c.name}>
                  <th scope="row">{c.name}</th>
                  <td class="wrap">
                    <span class={`dot ${mark}`} aria-hidden="true" /> {c.region === 'up' ? describe(c.actor?.state ?? null) : c.region}
                    {mark !== 'ok' && mark !== 'disabled' && <span class={`badge ${mark}`}>{mark}</span>}
                    {c.crash && <div class="muted small">last crash: {c.crash}</div>}
                  </td>
                  <td>{c.restarts}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Card>
      {link && <LinkCard link={link} />}
      {outbox && <OutboxCard outbox={outbox} />}
    </div>
  );
}

function LinkCard({ link }: { link: Actor }) {
  const ctx = link.context ?? {};
  return (
    <Card title="Link" testid="link">
      <Facts
        rows={[
          ['state', <span data-testid="link-state">{describe(link.state)}</span>],
          ['broker', <code>{ctx.broker ?? '–'}</code>],
          ['connected since', link.tags.includes('online') ? fmtDate(ctx.connectedAt) : '–'],
          ['reconnects seen', reconnectsSeen()],
          ['attempt', ctx.attempt ?? 0],
          ['last error', ctx.lastError?.message ?? '–'],
        ]}
      />
    </Card>
  );
}

function OutboxCard({ outbox }: { outbox: Actor }) {
  const ctx = outbox.context ?? {};
  const counters = (ctx.counters ?? {}) as Record<string, number | boolean>;
  const state = describe(outbox.state);
  const paused = /paused/.test(state);
  const [error, setError] = useState<string | null>(null);
  const command = (what: 'pause' | 'resume') =>
    post(`/api/v1/outbox/${what}`).then(
      () => setError(null),
      (e) => setError(String(e.message)),
    );
  return (
    <Card title="Outbox" testid="outbox">
      <Facts
        rows={[
          ['state', <span data-testid="outbox-state">{state}</span>],
          ['depth', <span data-testid="outbox-depth">{String(counters.depth ?? 0)}</span>],
          ['bytes', fmtBytes(counters.bytes as number)],
          ['enqueued', <span data-testid="outbox-enqueued">{String(counters.enqueued ?? 0)}</span>],
          ['delivered', String(counters.delivered ?? 0)],
          ['dropped', String(counters.dropped ?? 0)],
          ['refused', String(counters.refused ?? 0)],
          ['problem', ctx.problem ?? '–'],
        ]}
      />
      <div class="actions">
        <button type="button" onClick={() => command('pause')} disabled={paused}>
          Pause delivery
        </button>
        <button type="button" onClick={() => command('resume')} disabled={!paused}>
          Resume delivery
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </Card>
  );
}
