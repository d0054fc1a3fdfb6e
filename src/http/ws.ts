import { upgradeWebSocket } from '@hono/node-server';
import { Hono } from 'hono';
import type { WSContext } from 'hono/ws';
import type { AnyActorRef } from 'xstate';
import type { DeviceHub } from '../devices/hub.js';
import type { DeviceWriter } from '../devices/writer.js';
import type { Logger } from '../log.js';
import type { MonitorHub } from '../monitor/hub.js';
import type { ActorChanges } from '../observe.js';
import { TokenBucket } from './token-bucket.js';
import { ChangeBroadcast } from './ws-broadcast.js';

export interface WsLimits {
  /** clients at once; more get 503 */
  maxClients: number;
  /** requests a client may send per second on average, and at once */
  requestsPerSecond: number;
  burst: number;
}

export const defaultWsLimits: WsLimits = { maxClients: 100, requestsPerSecond: 10, burst: 20 };

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
  limits?: WsLimits;
}

/** A client this far behind is cut off rather than buffered without bound (1 MiB × maxClients at worst). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

type Raw = { bufferedAmount?: number; _socket?: { cork(): void; uncork(): void } } | undefined;

/**
 * /ws: on connect the whole tree ({"type":"state"}), then one {"type":"actor"} message per
 * changed actor, coalesced and shared by all clients, with the types of the events that changed
 * it in that window (`events`, the last 8). Clients may send {"type":"ping"} or
 * {"type":"state"}, and {"type":"subscribe","devices":"*" | [ids]} to receive each peripheral
 * reading as it is parsed ({"type":"reading","device","reading"}, not coalesced) and each frame
 * it rejects ({"type":"rejected","device","reason","message","at"}); {"type":"subscribe",
 * "monitor":"*" | [device ids]} likewise streams each stored monitoring sample
 * ({"type":"sample","device","ts","values"}); {"type":"unsubscribe"} stops them.
 * {"type":"write","device","command","ref"?} writes a command to a device and is answered
 * {"type":"write.result","ref",...} with accepted or the refusal's reason (docs/devices.md).
 * Anything else gets an {"type":"error"} frame and the stream goes on. Requests are rate limited per client (a token bucket): beyond the burst they
 * are refused with one {"type":"error","error":"rate_limited"}, and a client that keeps
 * sending while refused is closed with 1008. A client too slow to read is closed with 1013.
 */
export function wsRoutes(deps: WsDeps) {
  const limits = deps.limits ?? defaultWsLimits;
  const broadcast = new ChangeBroadcast(deps.changes, deps.root, deps.coalesceMs ?? 100);
  const hubText = lastText((device: string, hubEvent: { type: string }) => {
    const { type, ...rest } = hubEvent;
    return JSON.stringify({ type, device, ...rest });
  });
  return new Hono()
    .use('/', async (c, next) => {
      if (broadcast.size >= limits.maxClients) return c.json({ error: 'unavailable', message: `${limits.maxClients} WebSocket clients already (http.wsMaxClients)` }, 503);
      return next();
    })
    .get(
      '/',
      upgradeWebSocket(() => {
        let removeClient = () => {};
        let unsubscribeReadings = () => {};
        let unsubscribeSamples = () => {};
        let corked = false;
        let refused = 0;
        const bucket = new TokenBucket(limits.requestsPerSecond, limits.burst);

        /** False (and the client closed) when it is too far behind: checked before any work for it. */
        const keepingUp = (ws: WSContext) => {
          if (((ws.raw as Raw)?.bufferedAmount ?? 0) <= MAX_BUFFERED_BYTES) return true;
          ws.close(1013, 'client too slow');
          return false;
        };
        const sendText = (ws: WSContext, text: string) => {
          if (ws.readyState === 1 && keepingUp(ws)) ws.send(text);
        };
        const send = (ws: WSContext, message: unknown) => sendText(ws, JSON.stringify(message));
        const sendState = (ws: WSContext) => {
          if (!keepingUp(ws)) return;
          const text = broadcast.stateText();
          if (text) sendText(ws, text);
        };
        const admitted = (ws: WSContext) => {
          if (bucket.take()) return (refused = 0), true;
          if (++refused === 1) send(ws, { type: 'error', error: 'rate_limited', message: `more than ${limits.burst} requests at once or ${limits.requestsPerSecond} a second: refused` });
          if (refused > limits.burst) ws.close(1008, 'too many requests');
          return false;
        };

        return {
          onOpen(_event, ws) {
            removeClient = broadcast.add((text) => sendText(ws, text));
            sendState(ws);
          },
          onMessage(event, ws) {
            if (ws.readyState !== 1 || !admitted(ws)) return;
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
                const socket = (ws.raw as Raw)?._socket;
                if (socket && !corked) {
                  corked = true;
                  socket.cork();
                  process.nextTick(() => {
                    corked = false;
                    socket.uncork();
                  });
                }
                sendText(ws, hubText(device, hubEvent));
              }, request.subscribe);
              send(ws, { type: 'subscribed', devices: request.subscribe ? [...request.subscribe] : '*' });
            } else send(ws, { type: 'error', error: 'bad_message', message: request.error });
          },
          onClose() {
            removeClient();
            unsubscribeReadings();
            unsubscribeSamples();
          },
          onError(error) {
            deps.log.warn({ err: String(error) }, 'websocket error');
          },
        };
      }),
    );
}

/** `make` remembered for the last event: the hub hands one event to every subscriber in turn, so it is serialised once. */
function lastText<T>(make: (device: string, event: T) => string) {
  let last: { device: string; event: T; text: string } | undefined;
  return (device: string, event: T) => {
    if (last === undefined || last.event !== event || last.device !== device) last = { device, event, text: make(device, event) };
    return last.text;
  };
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
