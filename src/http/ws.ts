import { upgradeWebSocket } from '@hono/node-server';
import { Hono } from 'hono';
import type { WSContext } from 'hono/ws';
import type { AnyActorRef } from 'xstate';
import type { DeviceHub } from '../devices/hub.js';
import type { DeviceWriter } from '../devices/writer.js';
import type { Logger } from '../log.js';
import type { MonitorHub } from '../monitor/hub.js';
import type { ActorChanges } from '../observe.js';
import { actorPath, actorView, stateView } from './views.js';

export interface WsDeps {
  root: () => AnyActorRef | undefined;
  changes: ActorChanges;
  log: Logger;
  /** at most one message per actor per this many ms */
  coalesceMs?: number;
  /** peripheral readings, for clients that subscribe to them */
  readings?: DeviceHub;
  /** commands to peripherals ({"type":"write"}) */
  writer?: DeviceWriter;
  /** host monitoring samples (own and collected), for clients that subscribe to them */
  samples?: MonitorHub;
}

/** A client this far behind is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Event types kept per actor per coalescing window (the newest). */
const MAX_EVENTS = 8;

/**
 * /ws: on connect the whole tree ({"type":"state"}), then one {"type":"actor"} message per
 * changed actor, coalesced, with the types of the events that changed it in that window
 * (`events`, the last 8). Clients may send {"type":"ping"} or {"type":"state"}, and
 * {"type":"subscribe","devices":"*" | [ids]} to receive each peripheral reading as it is
 * parsed ({"type":"reading","device","reading"}, not coalesced) and each frame it rejects
 * ({"type":"rejected","device","reason","message","at"}); {"type":"unsubscribe"} stops them.
 * {"type":"subscribe","monitor":"*" | [device ids]} likewise streams each stored monitoring
 * sample ({"type":"sample","device","ts","values"}).
 * {"type":"write","device","command","ref"?} writes a command to a device and is answered
 * {"type":"write.result","ref",...} with accepted or the refusal's reason (docs/devices.md).
 * Anything else gets an {"type":"error"} frame and the stream goes on.
 */
export function wsRoutes(deps: WsDeps) {
  const coalesceMs = deps.coalesceMs ?? 100;
  return new Hono().get(
    '/',
    upgradeWebSocket(() => {
      let unsubscribe = () => {};
      let unsubscribeReadings = () => {};
      let unsubscribeSamples = () => {};
      let corked = false;
      let timer: NodeJS.Timeout | undefined;
      const dirty = new Map<string, { ref: AnyActorRef; events: string[] }>();

      const send = (ws: WSContext, message: unknown) => {
        const raw = ws.raw as { bufferedAmount?: number } | undefined;
        if ((raw?.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) return ws.close(1013, 'client too slow');
        ws.send(JSON.stringify(message));
      };
      const sendState = (ws: WSContext) => {
        const root = deps.root();
        if (root) send(ws, { type: 'state', ...stateView(root) });
      };
      const flush = (ws: WSContext) => {
        timer = undefined;
        for (const { ref, events } of dirty.values()) {
          const { children: _omitted, ...actor } = actorView(ref, 0);
          send(ws, { type: 'actor', path: actorPath(ref), actor, events });
        }
        dirty.clear();
      };

      return {
        onOpen(_event, ws) {
          sendState(ws);
          unsubscribe = deps.changes.subscribe((ref, eventType) => {
            const key = actorPath(ref).join('/');
            const entry = dirty.get(key) ?? { ref, events: [] };
            entry.events.push(eventType);
            if (entry.events.length > MAX_EVENTS) entry.events.shift();
            dirty.set(key, entry);
            timer ??= setTimeout(() => flush(ws), coalesceMs);
          });
        },
        onMessage(event, ws) {
          const request = parseRequest(event.data);
          if (request === 'ping') send(ws, { type: 'pong' });
          else if (request === 'state') sendState(ws);
          else if (request === 'unsubscribe') (unsubscribeReadings(), unsubscribeSamples());
          else if ('write' in request) {
            const { write } = request;
            if (!deps.writer) return send(ws, { type: 'error', error: 'unavailable', message: 'no peripherals in this agent' });
            void deps.writer.write(write.device, write.command, 'ws').then((result) => send(ws, { type: 'write.result', ref: write.ref, ...result }));
          } else if ('monitor' in request) {
            unsubscribeSamples();
            if (!deps.samples) return send(ws, { type: 'error', error: 'unavailable', message: 'monitoring is not enabled in this agent' });
            unsubscribeSamples = deps.samples.subscribe((sample) => send(ws, { type: 'sample', ...sample }), request.monitor);
            send(ws, { type: 'subscribed', monitor: request.monitor ? [...request.monitor] : '*' });
          } else if ('subscribe' in request) {
            unsubscribeReadings();
            if (!deps.readings) return send(ws, { type: 'error', error: 'unavailable', message: 'no peripherals in this agent' });
            unsubscribeReadings = deps.readings.subscribe((device, hubEvent) => {
              // The lines of one serial read arrive together: one socket write for all of them.
              const socket = (ws.raw as { _socket?: { cork(): void; uncork(): void } } | undefined)?._socket;
              if (socket && !corked) {
                corked = true;
                socket.cork();
                process.nextTick(() => {
                  corked = false;
                  socket.uncork();
                });
              }
              const { type, ...rest } = hubEvent;
              send(ws, { type, device, ...rest });
            }, request.subscribe);
            send(ws, { type: 'subscribed', devices: request.subscribe ? [...request.subscribe] : '*' });
          } else send(ws, { type: 'error', error: 'bad_message', message: request.error });
        },
        onClose() {
          unsubscribe();
          unsubscribeReadings();
          unsubscribeSamples();
          clearTimeout(timer);
        },
        onError(error) {
          deps.log.warn({ err: String(error) }, 'websocket error');
        },
      };
    }),
  );
}

type WsWrite = { device: string; command: string; ref?: string };
type Request = 'ping' | 'state' | 'unsubscribe' | { subscribe: Set<string> | null } | { monitor: Set<string> | null } | { write: WsWrite } | { error: string };

function parseRequest(data: unknown): Request {
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
    const devices = (message as { devices?: unknown }).devices;
    if (devices === '*' || devices === undefined) return { subscribe: null };
    if (Array.isArray(devices) && devices.length <= 1024 && devices.every((d) => typeof d === 'string')) return { subscribe: new Set(devices) };
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
