/** Talking to the agent: the bearer token (kept for this tab only, in sessionStorage), JSON
 * calls that carry it, and /ws opened with a single-use ticket (never the token in a URL). */

const TOKEN_KEY = 'edgevisor.token';

export class Unauthorized extends Error {}
export class NotFound extends Error {}

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const listeners = new Set<() => void>();
/** Called when a call was refused for want of a (valid) token. */
export const onUnauthorized = (listener: () => void) => (listeners.add(listener), () => listeners.delete(listener));

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const bearer = token.get();
  if (bearer) headers.set('Authorization', `Bearer ${bearer}`);
  if (init.body) headers.set('Content-Type', 'application/json');
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (res.status === 401) {
    for (const l of listeners) l();
    throw new Unauthorized('a valid token is required');
  }
  if (res.status === 404) throw new NotFound(path);
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.message ?? `${res.status} ${res.statusText}`);
  return body as T;
}

export const post = <T>(path: string, body?: unknown) => api<T>(path, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body) });

export type SocketStatus = 'connecting' | 'open' | 'closed' | 'unauthorized';

/**
 * /ws that reconnects (1 s, doubling to 30 s) and asks for a fresh ticket each time.
 * `onMessage` gets each parsed frame; `send` queues nothing: frames sent while closed are dropped
 * and the caller re-sends its subscriptions on `open`.
 */
export function connectSocket(handlers: { onMessage: (m: any) => void; onStatus: (s: SocketStatus) => void }) {
  let socket: WebSocket | undefined;
  let delay = 1000;
  let stopped = false;
  let timer: number | undefined;
  const open = async () => {
    handlers.onStatus('connecting');
    let ticket = '';
    try {
      ticket = (await post<{ ticket: string }>('/api/v1/ws-ticket')).ticket;
    } catch (error) {
      if (error instanceof Unauthorized) return handlers.onStatus('unauthorized');
      return retry();
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    socket.onopen = () => ((delay = 1000), handlers.onStatus('open'));
    socket.onmessage = (e) => handlers.onMessage(JSON.parse(e.data));
    socket.onclose = () => retry();
  };
  const retry = () => {
    handlers.onStatus('closed');
    if (stopped) return;
    timer = window.setTimeout(open, delay);
    delay = Math.min(delay * 2, 30_000);
  };
  void open();
  return {
    send: (message: unknown) => socket?.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message)),
    close: () => {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
    reconnect: () => {
      clearTimeout(timer);
      socket?.close();
      if (!socket || socket.readyState === WebSocket.CLOSED) void open();
    },
  };
}
