import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FirmwareService } from '../firmware/service.js';

/**
 * GET/HEAD /version and /firmware for a device whose verified build is in memory, answered
 * on Node's own request and response with headers computed once: the plain case a device
 * repeats all day, at the speed of a bare Node server (Hono costs a Request/Response pair per
 * request). Anything else (a miss, Range, conditional requests, an odd query) returns false and
 * goes to the app, which answers it with the same headers and bodies.
 */
export function firmwareFastPath(service: FirmwareService) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url!;
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    let firmware: boolean;
    let rest: string;
    if (url.startsWith('/version?device=')) (firmware = false), (rest = url.slice(16));
    else if (url.startsWith('/firmware?device=')) (firmware = true), (rest = url.slice(17));
    else return false;
    // One plain parameter only: escapes, more parameters or fragments go the long way.
    if (rest.length === 0 || /[^a-z0-9._-]/.test(rest)) return false;
    // Before peek: a request handed to the app is counted (a hit) there, once.
    const h = req.headers;
    if (firmware && (h.range !== undefined || h['if-none-match'] !== undefined || h['if-range'] !== undefined)) return false;
    const hot = service.peek(rest);
    if (!hot) return false;
    if (firmware) {
      res.writeHead(200, hot.firmwareHeaders);
      res.end(method === 'HEAD' ? undefined : hot.body);
    } else {
      res.writeHead(200, hot.versionHeaders);
      res.end(method === 'HEAD' ? undefined : hot.versionBody);
    }
    return true;
  };
}
