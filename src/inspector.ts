import { createServer } from 'node:http';
import type { InspectionEvent } from 'xstate';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from './log.js';

/** The relay keeps this many events for a browser that connects late (as @statelyai/inspect's does). */
const replayed = 200;
const maxFrameBytes = 1024 * 1024;

export interface InspectorOptions {
  port: number;
  /** loopback unless told otherwise: the tree shows job arguments and device data */
  host: string;
}

export const inspectorOptions = (env: NodeJS.ProcessEnv): InspectorOptions => ({
  port: Number(env.EDGEVISOR_INSPECT_PORT ?? 8081),
  host: env.EDGEVISOR_INSPECT_HOST ?? '127.0.0.1',
});

/**
 * Development only: relay the actor tree to the Stately inspector. @statelyai/inspect (a dev
 * dependency, loaded on demand) serialises the events; the relay is ours because the package's
 * server listens on every interface and takes no host.
 */
export async function startInspector(log: Logger, options: InspectorOptions) {
  const moduleName = '@statelyai/inspect';
  try {
    const { createWebSocketInspector } = (await import(moduleName)) as typeof import('@statelyai/inspect');
    const relay = await startRelay(options);
    const inspector = createWebSocketInspector({ url: `ws://${urlHost(options.host)}:${options.port}` });
    log.warn({ host: options.host, port: options.port }, 'statechart inspector relay started (development only)');
    if (!isLoopback(options.host))
      log.warn({ host: options.host }, 'the inspector relay has no authentication and shows job arguments and device data: keep it on loopback');
    return {
      inspect: (event: InspectionEvent) => inspector.inspect.next?.(event),
      stop: () => {
        inspector.stop();
        relay.close();
      },
    };
  } catch (error) {
    log.error({ err: String(error) }, 'cannot start the statechart inspector (is the dev dependency installed?)');
    return undefined;
  }
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');
const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** A page that frames stately.ai/inspect and forwards what the relay broadcasts; each message from one client goes to the others. */
async function startRelay({ host, port }: InspectorOptions) {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(bridgePage(port));
  });
  const wss = new WebSocketServer({ server, maxPayload: maxFrameBytes });
  const recent: string[] = [];
  wss.on('connection', (socket) => {
    for (const message of recent) socket.send(message);
    socket.on('message', (data) => {
      const message = data.toString();
      recent.push(message);
      if (recent.length > replayed) recent.shift();
      for (const client of wss.clients) if (client !== socket && client.readyState === WebSocket.OPEN) client.send(message);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    close: () => {
      wss.close();
      server.close();
    },
  };
}

const bridgePage = (port: number) => `<!DOCTYPE html>
<html><head><title>Stately Inspector</title>
<style>* { margin: 0; padding: 0; } html, body { height: 100%; } iframe { width: 100%; height: 100%; border: none; }</style>
</head><body>
<iframe id="inspector" src="https://stately.ai/inspect"></iframe>
<script>
  const iframe = document.getElementById('inspector');
  const buffer = [];
  let connected = false;
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === '@statelyai.connected') {
      connected = true;
      buffer.forEach((event) => iframe.contentWindow.postMessage(event, '*'));
      buffer.length = 0;
    }
  });
  const ws = new WebSocket('ws://' + location.hostname + ':${port}');
  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (connected) iframe.contentWindow.postMessage(data, '*');
    else buffer.push(data);
  };
</script>
</body></html>`;
