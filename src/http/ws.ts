import { upgradeWebSocket } from '@hono/node-server';
import { Hono } from 'hono';
import type { WSContext } from 'hono/ws';
import type { AnyActorRef } from 'xstate';
import type { DeviceHub } from '../devices/hub.js';
import type { Logger } from '../log.js';
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
  limits?: WsLimits;
}

/** A client this far behind is cut off rather than buffered without bound (1 MiB × maxClients at worst). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

type Raw = { bufferedAmount?: number; _socket?: { cork(): void; uncork(): void } } | undefined;

/**
 * /ws: on connect the whole tree ({"type":"state"}), then one {"type":"actor"} message per
 * changed actor, coalesced and shared by all clients. Clients may send {"type":"ping"} or
 * {"type":"state"}, and {"type":"subscribe","devices":"*" | [ids]} to receive each peripheral
 * reading as it is parsed ({"type":"reading","device","reading"}, not coalesced;
 * {"type":"unsubscribe"} stops them); anything else gets an {"type":"error"} frame and the
 * stream goes on. Requests are rate limited per client (a token bucket): beyond the burst they
 * are refused with one {"type":"error","error":"rate_limited"}, and a client that keeps
 * sending while refused is closed with 1008. A client too slow to read is closed with 1013.
 */
export function wsRoutes(deps: WsDeps) {
  const limits = deps.limits ?? defaultWsLimits;
  const broadcast = new ChangeBroadcast(deps.changes, deps.root, deps.coalesceMs ?? 100);
  const readingText = lastText((device: string, reading: unknown) => JSON.stringify({ type: 'reading', device, reading }));
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
            else if (request === 'unsubscribe') unsubscribeReadings();
            else if ('subscribe' in request) {
              unsubscribeReadings();
              if (!deps.readings) return send(ws, { type: 'error', error: 'unavailable', message: 'no peripherals in this agent' });
              unsubscribeReadings = deps.readings.subscribe((device, reading) => {
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
                sendText(ws, readingText(device, reading));
              }, request.subscribe);
              send(ws, { type: 'subscribed', devices: request.subscribe ? [...request.subscribe] : '*' });
            } else send(ws, { type: 'error', error: 'bad_message', message: request.error });
          },
          onClose() {
            removeClient();
            unsubscribeReadings();
          },
          onError(error) {
            deps.log.warn({ err: String(error) }, 'websocket error');
          },
        };
      }),
    );
}

/** `make` remembered for the last reading: the hub hands one reading to every subscriber in turn, so it is serialised once. */
function lastText(make: (device: string, reading: unknown) => string) {
  let last: { device: string; reading: unknown; text: string } | undefined;
  return (device: string, reading: unknown) => {
    if (last === undefined || last.reading !== reading || last.device !== device) last = { device, reading, text: make(device, reading) };
    return last.text;
  };
}

function parseRequest(data: unknown): 'ping' | 'state' | 'unsubscribe' | { subscribe: Set<string> | null } | { error: string } {
  if (typeof data !== 'string') return { error: 'send JSON text frames' };
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return { error: 'not valid JSON' };
  }
  const type = (message as { type?: unknown } | null)?.type;
  if (type === 'ping' || type === 'state' || type === 'unsubscribe') return type;
  if (type === 'subscribe') {
    const devices = (message as { devices?: unknown }).devices;
    if (devices === '*' || devices === undefined) return { subscribe: null };
    if (Array.isArray(devices) && devices.length <= 1024 && devices.every((d) => typeof d === 'string')) return { subscribe: new Set(devices) };
    return { error: 'devices must be "*" or an array of device ids' };
  }
  return { error: 'expected {"type":"ping"}, {"type":"state"} or {"type":"subscribe","devices":"*"}' };
}
