import { upgradeWebSocket, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import type { AnyActorRef } from 'xstate';
import type { DeviceHub } from '../devices/hub.js';
import type { DeviceWriter } from '../devices/writer.js';
import type { Logger } from '../log.js';
import type { MonitorHub } from '../monitor/hub.js';
import type { ActorChanges } from '../observe.js';
import { ChangeBroadcast } from './ws-broadcast.js';
import { WsClient } from './ws-client.js';

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

/**
 * /ws: on connect the whole tree ({"type":"state"}), then one {"type":"actor"} message per
 * changed actor, coalesced and shared by all clients, with the types of the events that changed
 * it in that window (`events`, the last 8). Clients may send {"type":"ping"} or
 * {"type":"state"}, and {"type":"subscribe","devices":"*" | [ids]} to receive each peripheral
 * reading as it is parsed ({"type":"reading","device","reading"}, not coalesced) and each frame
 * it rejects ({"type":"rejected","device","reason","message","at"}); with "batch":true those
 * frames come gathered, in order, as {"type":"readings","frames":[…]} at most every 100 ms
 * (sooner at 256 frames or 64 KiB; ws-batch.ts). {"type":"subscribe",
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
      if (broadcast.size >= limits.maxClients)
        return c.json({ error: 'unavailable', message: `${limits.maxClients} WebSocket clients already (http.wsMaxClients)` }, 503);
      return next();
    })
    .get(
      '/',
      upgradeWebSocket((c) => {
        // the upgraded request's own socket (public in Node's API), which ws goes on writing to
        const socket = (c.env as HttpBindings | undefined)?.incoming?.socket;
        const client = new WsClient(deps, broadcast, limits, hubText, socket);
        return {
          onOpen: (_event, ws) => client.open(ws),
          onMessage: (event, ws) => client.message(event.data, ws),
          onClose: () => client.close(),
          onError: (error) => deps.log.warn({ err: String(error) }, 'websocket error'),
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
