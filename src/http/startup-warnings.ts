import { isLoopback, type Config } from '../config/schema.js';

/** What an operator should fix in the HTTP setup, said once at start (the agent runs anyway). */
export function httpWarnings(config: Config): Array<{ key: string; message: string }> {
  const warnings: Array<{ key: string; message: string }> = [];
  if (config.firmware.enabled && !config.firmware.webhookSecret && !isLoopback(config.http.host)) {
    warnings.push({
      key: 'firmware.webhookSecret',
      message:
        `POST /webhooks/harbor is reachable on ${config.http.host}:${config.http.port} with no secret: anyone on the network can make the agent ` +
        'ask the registry again. Set firmware.webhookSecret and the same value as the auth header of the Harbor webhook (RECOMMENDED)',
    });
  }
  return warnings;
}
