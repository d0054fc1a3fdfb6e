import { useEffect, useRef, useState } from 'preact/hooks';
import { connectSocket, onUnauthorized, token, type SocketStatus } from './api.js';
import { apply, useLive } from './live.js';
import { TokenForm } from './views/token.js';
import { Overview } from './views/overview.js';
import { Statecharts } from './views/statecharts.js';
import { Jobs } from './views/jobs.js';
import { Peripherals } from './views/peripherals.js';
import { Firmware } from './views/firmware.js';
import { Monitoring } from './views/monitoring.js';

const views = {
  overview: { label: 'Overview', View: Overview },
  statecharts: { label: 'Statecharts', View: Statecharts },
  jobs: { label: 'Jobs', View: Jobs },
  peripherals: { label: 'Peripherals', View: Peripherals },
  firmware: { label: 'Firmware', View: Firmware },
  monitoring: { label: 'Monitoring', View: Monitoring },
};
type ViewName = keyof typeof views;

const fromHash = (): ViewName => {
  const name = location.hash.slice(1) as ViewName;
  return name in views ? name : 'overview';
};

/** The socket is shared: views send their subscriptions through it. */
export const socket = { send: (_message: unknown): unknown => false, resubscribe: [] as Array<() => void> };

export function App() {
  const live = useLive();
  const [view, setView] = useState<ViewName>(fromHash);
  const [status, setStatus] = useState<SocketStatus>('connecting');
  const [needToken, setNeedToken] = useState(false);
  const connection = useRef<ReturnType<typeof connectSocket> | null>(null);

  useEffect(() => {
    const onHash = () => setView(fromHash());
    addEventListener('hashchange', onHash);
    const off = onUnauthorized(() => setNeedToken(true));
    const conn = connectSocket({
      onMessage: (m) => {
        if (!apply(m)) conn.send({ type: 'state' }); // a change for an actor this page has not seen: ask for the whole tree
      },
      onStatus: (s) => {
        setStatus(s);
        if (s === 'unauthorized') setNeedToken(true);
        if (s === 'open') for (const again of socket.resubscribe) again();
      },
    });
    connection.current = conn;
    socket.send = conn.send;
    return () => (removeEventListener('hashchange', onHash), off(), conn.close());
  }, []);

  const signIn = (value: string) => {
    token.set(value);
    setNeedToken(false);
    connection.current?.reconnect();
  };
  const { View } = views[view];
  return (
    <>
      <header class="top">
        <h1>edgevisor</h1>
        <span class={`badge phase-${live.phase}`} data-testid="phase">
          {live.phase}
        </span>
        <span class={`badge socket-${status}`} data-testid="socket" title="live connection (/ws)">
          {status === 'open' ? 'live' : status}
        </span>
      </header>
      {needToken ? (
        <TokenForm onSubmit={signIn} rejected={Boolean(token.get())} />
      ) : (
        <>
          <nav class="tabs" aria-label="Views">
            {(Object.keys(views) as ViewName[]).map((name) => (
              <a href={`#${name}`} aria-current={name === view ? 'page' : undefined} class="tab">
                {views[name].label}
              </a>
            ))}
          </nav>
          <main id="main">
            <View />
          </main>
        </>
      )}
    </>
  );
}
