import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { fromCallback } from 'xstate';
import type { ListenerInput, ServerEvent } from '../../machines/listener.js';
import { listenFailure, brokerPortHint } from './listen-failure.js';
import { toFailure } from '../../machines/shared/types.js';
import { BrokerGate } from '../broker/gate.js';
import type { Credentials } from '../broker/credentials.js';
import { PacketSizeGuard } from '../broker/packet-guard.js';
import { PasswordFile } from '../broker/password-file.js';
import { reservedFor } from '../broker/policy.js';
import type { Closing } from '../closing.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

export interface EmbeddedBrokerDeps {
  closing: Closing;
  log: Logger;
  /** thingName and the mqtt section: users, TLS and limits */
  config: Pick<Config, 'thingName' | 'mqtt'>;
  /** the agent's own user, made in the state directory before the tree starts */
  credentials: () => Credentials;
}

/**
 * The in-process MQTT broker (aedes) for `mqtt.url: "embedded"`. The socket listens at once,
 * before aedes has finished loading, so the link's first connection attempt finds it; early
 * connections wait for the broker. Every client authenticates (the agent with its generated
 * user, others from the password file) and is bounded (docs/security.md).
 */
export function embeddedBrokerActor(deps: EmbeddedBrokerDeps) {
  return fromCallback<ServerEvent, ListenerInput>(({ sendBack, input }) => {
    const { mqtt } = deps.config;
    const limits = mqtt.embeddedLimits;
    let gate: BrokerGate;
    let server: Server;
    let users: PasswordFile | undefined;
    const sockets = new Set<Socket>();
    try {
      users = mqtt.embeddedPasswordFile ? PasswordFile.load(mqtt.embeddedPasswordFile) : undefined;
      gate = new BrokerGate({
        reserved: reservedFor(deps.config.thingName, mqtt.clientId ?? deps.config.thingName),
        agent: deps.credentials(),
        users,
        jobsServiceUser: mqtt.embeddedJobsServiceUser,
        allowAnonymous: mqtt.embeddedAllowAnonymous,
        limits,
        log: deps.log,
      });
      server = listen(mqtt.embeddedTls, limits.connectTimeoutSeconds * 1000, (socket) => accept(socket));
    } catch (error) {
      sendBack({ type: 'server.failed', error: toFailure(error) });
      return () => {};
    }
    const broker = import('aedes').then(({ Aedes }) =>
      Aedes.createBroker({
        ...gate.hooks(),
        maxInflightInbound: limits.maxInflight,
        connectTimeout: limits.connectTimeoutSeconds * 1000,
        drainTimeout: 30_000,
      }),
    );
    broker.then((b) => b.on('ack', (packet, client) => gate.onAck(packet, client))).catch(() => {});
    const accept = (socket: Socket) => {
      socket.setNoDelay(true); // see mqtt-client.ts: Nagle costs ~40 ms per acknowledgement
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      const guarded = new PacketSizeGuard(socket, limits.maxPacketBytes, (length) =>
        deps.log.warn({ remote: socket.remoteAddress, length, maxPacketBytes: limits.maxPacketBytes }, 'packet too large; connection closed'),
      );
      broker.then((b) => b.handle(guarded)).catch(() => socket.destroy());
    };
    server.maxConnections = limits.maxConnections;
    broker.catch((error) => sendBack({ type: 'server.failed', error: toFailure(error) }));
    server.once('error', (error) => sendBack({ type: 'server.failed', error: listenFailure(error, brokerPortHint(input.port)) }));
    server.listen(input.port, input.host, () => {
      const { address, port } = server.address() as AddressInfo;
      deps.log.info(
        { host: address, port, tls: Boolean(mqtt.embeddedTls), anonymous: mqtt.embeddedAllowAnonymous, users: users?.size ?? 0 },
        'embedded broker listening',
      );
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

/** A plain TCP server, or TLS with the configured certificate (a non-loopback host needs it). */
function listen(tls: Config['mqtt']['embeddedTls'], handshakeTimeout: number, accept: (socket: Socket) => void): Server {
  if (!tls) return createServer(accept);
  return createTlsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), handshakeTimeout }, accept);
}
