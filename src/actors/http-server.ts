import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { WebSocketServer } from 'ws';
import { fromCallback } from 'xstate';
import type { ListenerInput, ServerEvent } from '../../machines/listener.js';
import { httpPortHint, listenFailure } from './listen-failure.js';
import { toFailure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Logger } from '../log.js';

export interface HttpServerDeps {
  fetch: (request: Request, env: never) => Response | Promise<Response>;
  closing: Closing;
  log: Logger;
  /** how long open requests may take to finish on close before their sockets are cut */
  graceMs?: number;
  /** answers the hottest requests (cached firmware) straight on Node's objects; false passes to the app */
  fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** largest WebSocket frame a client may send (ws's own default is 100 MiB); larger ones close it with 1009 */
  wsMaxPayloadBytes?: number;
}

/** The Hono app on a Node HTTP server with WebSocket upgrades (the `server` of the http listener). */
export function httpServerActor(deps: HttpServerDeps) {
  return fromCallback<ServerEvent, ListenerInput>(({ sendBack, input }) => {
    const wss = new WebSocketServer({ noServer: true, maxPayload: deps.wsMaxPayloadBytes ?? 64 * 1024 });
    const fast = deps.fastPath;
    const withFastPath = fast
      ? (options: ServerOptions, listener: RequestListener) => createServer(options, (req, res) => void (fast(req, res) || listener(req, res)))
      : undefined;
    const server = serve({
      fetch: deps.fetch as never,
      hostname: input.host,
      port: input.port,
      websocket: { server: wss },
      createServer: withFastPath as never,
    }) as Server;
    let listening = false;
    server.on('error', (error) => sendBack({ type: 'server.failed', error: listening ? toFailure(error) : listenFailure(error, httpPortHint) }));
    server.on('listening', () => {
      listening = true;
      const { address, port } = server.address() as AddressInfo;
      deps.log.info({ host: address, port }, 'http listening');
      sendBack({ type: 'server.listening', host: address, port });
    });
    return () => {
      for (const client of wss.clients) client.close(1001, 'edgevisor is stopping');
      wss.close();
      if (!listening) return void server.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const cut = setTimeout(() => server.closeAllConnections(), deps.graceMs ?? 1000);
      deps.closing.track(
        'http',
        closed.finally(() => clearTimeout(cut)),
      );
    };
  });
}
