import { createServer, type AddressInfo, type Socket } from 'node:net';
import { fromCallback } from 'xstate';
import type { ListenerInput, ServerEvent } from '../../machines/listener.js';
import { toFailure } from '../../machines/shared/types.js';
import type { Closing } from '../closing.js';
import type { Logger } from '../log.js';

/**
 * The in-process MQTT broker (aedes) for `mqtt.url: "embedded"`. The socket listens at once,
 * before aedes has finished loading, so the link's first connection attempt finds it; early
 * connections wait for the broker.
 */
export function embeddedBrokerActor(deps: { closing: Closing; log: Logger }) {
  return fromCallback<ServerEvent, ListenerInput>(({ sendBack, input }) => {
    const broker = import('aedes').then(({ Aedes }) => Aedes.createBroker());
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      socket.setNoDelay(true); // see mqtt-client.ts: Nagle costs ~40 ms per acknowledgement
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      broker.then((b) => b.handle(socket)).catch(() => socket.destroy());
    });
    broker.catch((error) => sendBack({ type: 'server.failed', error: toFailure(error) }));
    server.once('error', (error) => sendBack({ type: 'server.failed', error: toFailure(error) }));
    server.listen(input.port, input.host, () => {
      const { address, port } = server.address() as AddressInfo;
      deps.log.info({ host: address, port }, 'embedded broker listening');
      sendBack({ type: 'server.listening', host: address, port });
    });
    return () => {
      deps.closing.trackAfterOthers('embedded broker', async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await Promise.all([closed, broker.then((b) => new Promise<void>((resolve) => b.close(() => resolve())))]);
      });
    };
  });
}
