import type { InspectionEvent } from 'xstate';
import type { Logger } from './log.js';

/**
 * Development only: relay the actor tree to the Stately inspector. @statelyai/inspect is a
 * dev dependency, loaded on demand; its relay listens on every interface, so never enable
 * this on a device on a shared network (tunnel to a laptop instead).
 */
export async function startInspector(log: Logger, port = Number(process.env.EDGEVISOR_INSPECT_PORT ?? 8081)) {
  const moduleName = '@statelyai/inspect';
  const serverModule = '@statelyai/inspect/server';
  try {
    const { createWebSocketInspector } = (await import(moduleName)) as typeof import('@statelyai/inspect');
    const { createInspectorServer } = (await import(serverModule)) as { createInspectorServer: (o: { port: number; autoOpen: boolean }) => unknown };
    createInspectorServer({ port, autoOpen: false });
    const inspector = createWebSocketInspector({ url: `ws://localhost:${port}` });
    log.warn({ port }, 'statechart inspector relay started (development only)');
    return { inspect: (event: InspectionEvent) => inspector.inspect.next?.(event), stop: () => inspector.stop() };
  } catch (error) {
    log.error({ err: String(error) }, 'cannot start the statechart inspector (is the dev dependency installed?)');
    return undefined;
  }
}
