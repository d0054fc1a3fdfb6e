import type { WSContext } from 'hono/ws';
import { TokenBucket } from './token-bucket.js';
import type { WsDeps, WsLimits } from './ws.js';
import { ReadingBatch } from './ws-batch.js';
import type { ChangeBroadcast } from './ws-broadcast.js';
import { parseRequest } from './ws-requests.js';

/** A client this far behind is cut off rather than buffered without bound (1 MiB × maxClients at worst). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/** The part of the `ws` library's socket a client reads: public API only. */
type Raw = { bufferedAmount?: number } | undefined;

type HubText = (device: string, event: { type: string }) => string;

/** What a client needs of its TCP socket: to put the lines of one serial read in one write. */
type Corkable = { cork(): void; uncork(): void };

/** One /ws connection: its rate limit, its subscriptions, and what it is sent. */
export class WsClient {
  private removeClient = () => {};
  private unsubscribeReadings = () => {};
  private unsubscribeSamples = () => {};
  /** set while the client takes its readings batched */
  private batch: ReadingBatch | undefined;
  private refused = 0;
  private corked = false;
  private readonly bucket: TokenBucket;

  constructor(
    private readonly deps: WsDeps,
    private readonly broadcast: ChangeBroadcast,
    private readonly limits: WsLimits,
    private readonly hubText: HubText,
    private readonly socket?: Corkable,
  ) {
    this.bucket = new TokenBucket(limits.requestsPerSecond, limits.burst);
  }

  open(ws: WSContext): void {
    this.removeClient = this.broadcast.add((text) => this.sendText(ws, text));
    this.sendState(ws);
  }

  close(): void {
    this.batch?.close(); // first: nothing is flushed to a closed socket, no timer is left
    this.removeClient();
    this.unsubscribeReadings();
    this.unsubscribeSamples();
  }

  message(data: unknown, ws: WSContext): void {
    if (ws.readyState !== 1 || !this.admitted(ws)) return;
    const request = parseRequest(data);
    if (request === 'ping') this.send(ws, { type: 'pong' });
    else if (request === 'state') this.sendState(ws);
    else if (request === 'unsubscribe') this.unsubscribeReadings(), this.unsubscribeSamples();
    else if ('write' in request) this.write(ws, request.write);
    else if ('monitor' in request) this.subscribeSamples(ws, request.monitor);
    else if ('subscribe' in request) this.subscribeReadings(ws, request.subscribe, request.batch);
    else this.send(ws, { type: 'error', error: 'bad_message', message: request.error });
  }

  private write(ws: WSContext, write: { device: string; command: string; ref?: string }): void {
    if (!this.deps.writer) return this.send(ws, { type: 'error', error: 'unavailable', message: 'no peripherals in this agent' });
    void this.deps.writer.write(write.device, write.command, 'ws').then((result) => this.send(ws, { type: 'write.result', ref: write.ref, ...result }));
  }

  private subscribeSamples(ws: WSContext, devices: Set<string> | null): void {
    this.unsubscribeSamples();
    if (!this.deps.samples) return this.send(ws, { type: 'error', error: 'unavailable', message: 'monitoring is not enabled in this agent' });
    this.unsubscribeSamples = this.deps.samples.subscribe((sample) => this.send(ws, { type: 'sample', ...sample }), devices);
    this.send(ws, { type: 'subscribed', monitor: devices ? [...devices] : '*' });
  }

  private subscribeReadings(ws: WSContext, devices: Set<string> | null, batched: boolean): void {
    this.unsubscribeReadings();
    if (!this.deps.readings) return this.send(ws, { type: 'error', error: 'unavailable', message: 'no peripherals in this agent' });
    const batch = batched ? new ReadingBatch((text) => this.sendText(ws, text)) : undefined;
    const off = this.deps.readings.subscribe((device, event) => {
      if (batch) return batch.add(this.hubText(device, event));
      this.corkForThisTick();
      this.sendText(ws, this.hubText(device, event));
    }, devices);
    this.batch = batch;
    // what was read before the unsubscription still goes out, ahead of any later frame
    this.unsubscribeReadings = () => (off(), batch?.flush(), (this.unsubscribeReadings = () => {}));
    this.send(ws, { type: 'subscribed', devices: devices ? [...devices] : '*', ...(batched && { batch: true }) });
  }

  /** The lines of one serial read arrive together: one socket write for all of them. */
  private corkForThisTick(): void {
    if (!this.socket || this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket?.uncork();
    });
  }

  /** False (and the client closed) when it is too far behind: checked before any work for it. */
  private keepingUp(ws: WSContext): boolean {
    if (((ws.raw as Raw)?.bufferedAmount ?? 0) <= MAX_BUFFERED_BYTES) return true;
    ws.close(1013, 'client too slow');
    return false;
  }

  private sendText(ws: WSContext, text: string): void {
    if (ws.readyState === 1 && this.keepingUp(ws)) ws.send(text);
  }

  private send(ws: WSContext, message: unknown): void {
    this.sendText(ws, JSON.stringify(message));
  }

  private sendState(ws: WSContext): void {
    if (!this.keepingUp(ws)) return;
    const text = this.broadcast.stateText();
    if (text) this.sendText(ws, text);
  }

  private admitted(ws: WSContext): boolean {
    if (this.bucket.take()) return ((this.refused = 0), true);
    if (++this.refused === 1) {
      const { burst, requestsPerSecond } = this.limits;
      this.send(ws, { type: 'error', error: 'rate_limited', message: `more than ${burst} requests at once or ${requestsPerSecond} a second: refused` });
    }
    if (this.refused > this.limits.burst) ws.close(1008, 'too many requests');
    return false;
  }
}
