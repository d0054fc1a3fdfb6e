import { toFailure, type Failure } from '../../machines/shared/types.js';

/** A listener that could not start, said so that the operator knows what to change. */
export function listenFailure(error: unknown, fix: string): Failure {
  const failure = toFailure(error);
  if ((error as NodeJS.ErrnoException)?.code !== 'EADDRINUSE') return failure;
  return { ...failure, message: `already in use: ${fix}` };
}

export const brokerPortHint = (port: number) =>
  `another MQTT broker (Debian's mosquitto starts one on 1883)? Use it with mqtt.url "mqtt://127.0.0.1:${port}", or set mqtt.embeddedPort to a free port`;
export const httpPortHint = 'set http.port to a free port';
