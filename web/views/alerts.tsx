import { allActors, live, type Actor } from '../live.js';
import { Card, fmtDate } from './common.js';

const levelOf = (a: Actor): string => {
  const value = a.state as any;
  return typeof value === 'string' ? value : (value?.live?.level ?? JSON.stringify(value));
};
const badge = (level: string) => (level === 'firing' ? 'unhealthy' : level === 'pending' ? 'degraded' : 'ok');

/** An alert's history: what its own record says (pending since, fired at) and the transitions this page saw. */
function historyOf(path: string[], a: Actor): Array<{ at: number; alert: string; what: string }> {
  const ctx = a.context ?? {};
  const own = [
    ...(ctx.since ? [{ at: ctx.since as number, what: 'crossed the threshold (pending)' }] : []),
    ...(ctx.firedAt ? [{ at: ctx.firedAt as number, what: 'firing' }] : []),
  ];
  const seen = (live.transitions.get(path.join('/')) ?? []).filter((t) => t.from !== '(new)').map((t) => ({ at: t.at, what: `${t.from} → ${t.to}` }));
  return [...own, ...seen].map((h) => ({ ...h, alert: a.id }));
}

/** The alert rules' live state under monitor → alerts (one actor per rule × device), newest history first. */
export function Alerts({ monitor }: { monitor: Actor }) {
  const manager = monitor.children.find((c) => c.id === 'alerts');
  const alerts = allActors(manager ?? null, ['supervisor', 'monitor']).filter(({ actor }) => actor.machine === 'alert');
  const ended = [...live.ended.values()].filter(({ actor }) => actor.machine === 'alert');
  const history = [...alerts, ...ended]
    .flatMap(({ path, actor }) => historyOf(path, actor))
    .sort((a, b) => b.at - a.at)
    .slice(0, 50);
  const counters = manager?.context?.counters ?? {};
  const rules = (manager?.context?.rules ?? []) as unknown[];
  return (
    <Card title="Alerts" testid="alerts">
      {!manager ? (
        <p class="muted">No alert rules (monitor.alerts).</p>
      ) : (
        <>
          <p class="muted small">
            {rules.length} rules · {counters.notices ?? 0} notices sent, {counters.suppressed ?? 0} held back by the rate limit
          </p>
          {alerts.length === 0 ? (
            <p class="muted">No alert has been raised.</p>
          ) : (
            <div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th>rule</th>
                    <th>device</th>
                    <th>level</th>
                    <th>value</th>
                    <th>pending since</th>
                    <th>fired at</th>
                  </tr>
                </thead>
                <tbody>
                  {alerts.map(({ actor: a }) => {
                    const ctx = a.context ?? {};
                    const level = levelOf(a);
                    return (
                      <tr data-alert={a.id}>
                        <td>
                          {ctx.rule?.id ?? a.id} <span class="muted small">{ctx.rule ? `${ctx.rule.metric} ${ctx.rule.op} ${ctx.rule.threshold}` : ''}</span>
                        </td>
                        <td>
                          <code>{ctx.device ?? '–'}</code>
                        </td>
                        <td>
                          <span class={`badge ${badge(level)}`} data-testid="alert-level">
                            {level}
                          </span>
                          {ctx.stale && <span class="badge degraded">stale</span>}
                        </td>
                        <td>{typeof ctx.value === 'number' ? Number(ctx.value.toFixed(2)) : '–'}</td>
                        <td>{fmtDate(ctx.since)}</td>
                        <td>{fmtDate(ctx.firedAt)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          {history.length > 0 && (
            <>
              <h3 class="small">History</h3>
              <ul class="small history" data-testid="alert-history">
                {history.map((h) => (
                  <li>
                    {fmtDate(h.at)} <code>{h.alert}</code>: {h.what}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </Card>
  );
}
