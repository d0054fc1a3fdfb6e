/** What a /ws client may ask, checked: a request, or the reason it is refused. */
export type WsWrite = { device: string; command: string; ref?: string };
export type Request =
  | 'ping'
  | 'state'
  | 'unsubscribe'
  | { subscribe: Set<string> | null; batch: boolean }
  | { monitor: Set<string> | null }
  | { write: WsWrite }
  | { error: string };

export function parseRequest(data: unknown): Request {
  if (typeof data !== 'string') return { error: 'send JSON text frames' };
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return { error: 'not valid JSON' };
  }
  const type = (message as { type?: unknown } | null)?.type;
  if (type === 'ping' || type === 'state' || type === 'unsubscribe') return type;
  if (type === 'subscribe' && 'monitor' in (message as object)) {
    const ids = deviceSet((message as { monitor?: unknown }).monitor);
    return ids === 'bad' ? { error: 'monitor must be "*" or an array of device ids' } : { monitor: ids };
  }
  if (type === 'subscribe') {
    const { devices, batch = false } = message as { devices?: unknown; batch?: unknown };
    if (typeof batch !== 'boolean') return { error: 'batch must be true or false' };
    if (devices === '*' || devices === undefined) return { subscribe: null, batch };
    if (Array.isArray(devices) && devices.length <= 1024 && devices.every((d) => typeof d === 'string')) return { subscribe: new Set(devices), batch };
    return { error: 'devices must be "*" or an array of device ids' };
  }
  if (type === 'write') {
    const { device, command, ref } = message as { device?: unknown; command?: unknown; ref?: unknown };
    if (typeof device !== 'string' || typeof command !== 'string') return { error: 'write needs "device" and "command" strings' };
    if (ref !== undefined && (typeof ref !== 'string' || ref.length > 128)) return { error: 'ref must be a string of at most 128 characters' };
    return { write: { device, command, ref } };
  }
  return { error: 'expected {"type":"ping"}, {"type":"state"}, {"type":"subscribe","devices":"*"} or {"type":"write","device","command"}' };
}

function deviceSet(value: unknown): Set<string> | null | 'bad' {
  if (value === '*') return null;
  if (Array.isArray(value) && value.length <= 1024 && value.every((d) => typeof d === 'string')) return new Set(value);
  return 'bad';
}
