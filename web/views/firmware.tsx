import { describe, useLive } from '../live.js';
import { Card, fmtBytes, fmtTime, useFetched } from './common.js';

export function Firmware() {
  const { tree } = useLive();
  const firmware = tree?.children.find((c) => c.id === 'firmware');
  // hits move with every request: re-read when the manager's use order changes (the service
  // reports the devices it served every 2 s) or an entry changes, never on a timer
  const version = firmware ? JSON.stringify([firmware.context?.entries, firmware.children.map((c) => [c.id, c.state])]) : '';
  const { data } = useFetched<{ hits: Record<string, number> }>(firmware ? '/api/v1/firmware' : null, version);
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  if (!firmware)
    return (
      <Card title="Firmware" testid="firmware">
        <p class="muted">The firmware concern is not enabled on this agent (firmware.enabled).</p>
      </Card>
    );
  const entries = firmware.children.filter((c) => c.id.startsWith('firmware:') || c.context?.device);
  const counters = (firmware.context?.counters ?? {}) as Record<string, number>;
  return (
    <Card title={`Firmware cache · ${describe(firmware.state)}`} testid="firmware">
      <p class="muted small">
        {counters.entries ?? entries.length} entries, {fmtBytes(counters.bytes)} cached
      </p>
      {entries.length === 0 ? (
        <p class="muted">No device has asked for firmware yet.</p>
      ) : (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th>device</th>
                <th>version</th>
                <th>size</th>
                <th>crc32</th>
                <th>freshness</th>
                <th>hits</th>
                <th>state</th>
                <th>last problem</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => {
                const ctx = e.context ?? {};
                const state = describe(e.state);
                const fresh = /fresh/.test(state) ? 'fresh' : /stale|refreshing/.test(state) ? 'stale' : '–';
                return (
                  <tr data-firmware={ctx.device}>
                    <td>
                      <code>{ctx.device ?? e.id}</code>
                    </td>
                    <td>{ctx.current?.version ?? '–'}</td>
                    <td>{fmtBytes(ctx.current?.size)}</td>
                    <td>
                      <code>{ctx.current ? (ctx.current.crc32 >>> 0).toString(16).padStart(8, '0') : '–'}</code>
                    </td>
                    <td>
                      <span class={`badge ${fresh}`}>{fresh}</span>
                    </td>
                    <td data-testid="firmware-hits">{data?.hits[ctx.device] ?? '–'}</td>
                    <td>{state}</td>
                    <td class="small">
                      {ctx.lastError ? `${ctx.lastError.message} ${ctx.failures ? `(${ctx.failures}×)` : ''}` : '–'}
                      {ctx.lastError?.at ? ` ${fmtTime(ctx.lastError.at)}` : ''}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
