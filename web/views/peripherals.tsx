import { useEffect, useState } from 'preact/hooks';
import { socket } from '../app.js';
import { clearReadings, describe, live, MAX_READINGS, useLive } from '../live.js';
import { Card, fmtBytes, fmtTime, useFetched } from './common.js';

interface DeviceRow {
  id: string;
  present: boolean;
  path: string;
  profile: string | null;
  state: string;
  counters: { frames: number; bytes: number; errors: number; reconnects: number; dropped: number };
  lastFrameAt: number | null;
  lastError: string | null;
}

export function Peripherals() {
  const { tree } = useLive();
  const devicesActor = tree?.children.find((c) => c.id === 'devices');
  const version = devicesActor ? JSON.stringify([devicesActor.state, devicesActor.children.map((c) => [c.id, c.state, c.context?.reconnects])]) : '';
  // the counters move with every frame; they are re-read when a device changes state and when readings arrive (at most once a second)
  const tick = Math.floor(live.readingCount > 0 ? Date.now() / 1000 : 0);
  const { data, error } = useFetched<{ devices: DeviceRow[]; profiles: { errors: Array<{ file: string; message: string }> } | null }>(
    devicesActor ? '/api/v1/devices' : null,
    `${version}|${tick}`,
  );
  const [chosen, setChosen] = useState<string | null>(null);
  useEffect(() => {
    if (!chosen) return;
    clearReadings();
    const subscribe = () => socket.send({ type: 'subscribe', devices: [chosen], batch: true });
    subscribe();
    socket.resubscribe.push(subscribe);
    return () => {
      socket.resubscribe.splice(socket.resubscribe.indexOf(subscribe), 1);
      socket.send({ type: 'unsubscribe' });
    };
  }, [chosen]);
  if (!tree) return <p class="muted">Waiting for the agent's state…</p>;
  if (!devicesActor)
    return (
      <Card title="Peripherals" testid="devices">
        <p class="muted">The devices concern is not enabled on this agent (devices.enabled).</p>
      </Card>
    );
  const rows = data?.devices ?? [];
  return (
    <div class="stack">
      <Card title={`Devices · ${describe(devicesActor.state)}`} testid="devices">
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {rows.length === 0 ? (
          <p class="muted">No device present or known.</p>
        ) : (
          <div class="scroll">
            <table class="stacks">
              <thead>
                <tr>
                  <th>device</th>
                  <th>profile</th>
                  <th>port</th>
                  <th>state</th>
                  <th>frames</th>
                  <th>bytes</th>
                  <th>errors</th>
                  <th>reconnects</th>
                  <th>last frame</th>
                  <th>last problem</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {rows.map((d) => (
                  <tr data-device={d.id} class={d.id === chosen ? 'chosen' : ''}>
                    <td data-label="device">
                      <code>{d.id}</code>
                    </td>
                    <td data-label="profile">{d.profile ?? '–'}</td>
                    <td data-label="port">
                      <code class="small">{d.path}</code>
                    </td>
                    <td data-label="state">{d.state}</td>
                    <td data-label="frames">{d.counters.frames}</td>
                    <td data-label="bytes">{fmtBytes(d.counters.bytes)}</td>
                    <td data-label="errors">{d.counters.errors}</td>
                    <td data-label="reconnects">{d.counters.reconnects}</td>
                    <td data-label="last frame">{fmtTime(d.lastFrameAt)}</td>
                    <td data-label="last problem" class="small">
                      {d.lastError ?? '–'}
                    </td>
                    <td class="actions">
                      <button type="button" onClick={() => setChosen(d.id === chosen ? null : d.id)} aria-pressed={d.id === chosen}>
                        {d.id === chosen ? 'Stop' : 'Watch'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {data?.profiles?.errors?.map((e) => (
          <p class="error small">
            profile {e.file}: {e.message}
          </p>
        ))}
      </Card>
      {chosen && <Readings device={chosen} />}
    </div>
  );
}

function Readings({ device }: { device: string }) {
  // live.shown holds the newest MAX_READINGS already
  const shown = live.shown.readings.filter((r) => r.device === device).reverse();
  return (
    <Card title={`Live readings · ${device}`} testid="readings">
      <p class="muted small">
        {live.shown.count} {live.shown.count === 1 ? 'reading' : 'readings'} received; the newest {MAX_READINGS} shown.
      </p>
      {shown.length === 0 ? (
        <p class="muted">Waiting for the device to send…</p>
      ) : (
        <ol class="readings">
          {shown.map((r) => (
            <li>
              <span class="muted">{fmtTime(r.at)}</span> <code>{JSON.stringify(r.reading)}</code>
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}
