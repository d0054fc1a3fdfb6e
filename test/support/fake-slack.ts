import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from './ports.js';

/** A loopback stand-in for Slack's incoming webhook: answers what `answer` says, records every body it took (200). */
export class FakeSlack {
  readonly taken: Array<{ text: string; blocks: unknown[] }> = [];
  requests = 0;
  answer: (n: number) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 200, body: 'ok' });
  private server: Server | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<FakeSlack> {
    const slack = new FakeSlack(await freePort());
    await slack.listen();
    return slack;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/services/T000/B000/XXXX`;
  }

  listen(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    return new Promise((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  /** Stops listening: connections are refused until `listen` again. */
  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.closeAllConnections();
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const answer = this.answer(++this.requests);
      if (answer.status === 200) this.taken.push(JSON.parse(body));
      res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
    });
  }
}

/** The alerts manager with the real notifier and store over `stateDir`; samples in sample time. */
