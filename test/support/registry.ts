import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { killOnExit } from './mosquitto.js';
import { freePort, waitFor } from './ports.js';
import { terminate } from './processes.js';
import { requirePeer } from './peers.js';

export interface RegistryOptions {
  /** htpasswd basic auth with this user */
  user?: { name: string; password: string };
  tls?: { cert: string; key: string };
  /** storage of another (stopped) registry, to serve what was pushed to it */
  storage?: string;
}

/**
 * Debian's docker-registry (Docker Distribution 2.8) on a loopback port, with a throwaway
 * config and storage. Started with an empty environment: it reads any REGISTRY_* variable
 * as configuration.
 */
export class DockerRegistry {
  private process?: ChildProcess;
  readonly root: string;
  private constructor(
    readonly port: number,
    private readonly configFile: string,
    root: string,
    readonly tls: boolean,
  ) {
    this.root = root;
  }

  static async start(options: RegistryOptions = {}): Promise<DockerRegistry> {
    const dir = mkdtempSync(join(tmpdir(), 'edgevisor-registry-'));
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${options.storage ?? `${dir}/data`}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
    ];
    if (options.tls) lines.push('  tls:', `    certificate: ${options.tls.cert}`, `    key: ${options.tls.key}`);
    if (options.user) {
      const file = join(dir, 'htpasswd');
      writeFileSync(file, `${options.user.name}:${bcrypt.hashSync(options.user.password, 5)}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: edgevisor-test', `    path: ${file}`);
    }
    const configFile = join(dir, 'config.yml');
    writeFileSync(configFile, `${lines.join('\n')}\n`);
    const registry = new DockerRegistry(port, configFile, options.storage ?? join(dir, 'data'), Boolean(options.tls));
    await registry.resume();
    return registry;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://${this.host}`;
  }

  async resume(): Promise<void> {
    const child = spawn(requirePeer('docker-registry'), ['serve', this.configFile], { env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
    killOnExit(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    this.process = child;
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`docker-registry exited (${code}): ${stderr.trim()}`))));
    exited.catch(() => {});
    const ready = Promise.race([
      // A TCP connect, not a request: a TLS registry's CA is the agent's to trust, not this process's.
      waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const socket = connect({ host: '127.0.0.1', port: this.port });
            socket.once('connect', () => (socket.destroy(), resolve(true)));
            socket.once('error', () => resolve(false));
          }),
        `docker-registry on ${this.port}`,
      ),
      exited,
    ]);
    // One that never became ready must not outlive the test.
    await ready.catch((error) => {
      child.kill('SIGKILL');
      throw error;
    });
  }

  async stop(): Promise<void> {
    await terminate(this.process);
    this.process = undefined;
  }

  /** Where the registry keeps a blob's bytes. */
  blobPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return join(this.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  }

  /** Flips bytes of a stored blob in place (same length): what a corrupt disk or an attacker does. */
  tamper(digest: string): void {
    const path = this.blobPath(digest);
    const bytes = readFileSync(path);
    for (let i = 0; i < Math.min(16, bytes.length); i++) bytes[i] ^= 0xff;
    writeFileSync(path, bytes);
  }
}

/**
 * A reverse proxy in front of a registry that counts requests by kind and, with `token`,
 * demands Bearer tokens the way Harbor does: 401 with a challenge, and a token service at
 * /service/token that wants Basic credentials.
 */
export class RegistryProxy {
  readonly counts = { tags: 0, manifests: 0, blobs: 0, token: 0, other: 0 };
  private readonly tokens = new Set<string>();
  private server?: Server;
  port = 0;

  constructor(
    private readonly upstream: { host: string; port: number },
    private readonly token?: { user: string; password: string },
    /** answer tags/list in pages of this many, sorted, with Link: <…>; rel="next" (as Harbor and GHCR do; distribution 2.8 does not) */
    private readonly pageSize?: number,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.port = await freePort();
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    return this;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  reset(): void {
    for (const key of Object.keys(this.counts) as Array<keyof RegistryProxy['counts']>) this.counts[key] = 0;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    if (path.startsWith('/service/token')) return this.issue(req, res);
    if (/\/tags\/list/.test(path)) this.counts.tags++;
    else if (/\/manifests\//.test(path)) this.counts.manifests++;
    else if (/\/blobs\/sha256:/.test(path) && req.method === 'GET') this.counts.blobs++;
    else this.counts.other++;
    if (this.token && !this.tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
      const repo = /^\/v2\/(.+?)\/(tags|manifests|blobs)\//.exec(path)?.[1];
      const scope = repo ? `,scope="repository:${repo}:pull"` : '';
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://${this.host}/service/token",service="harbor-registry"${scope}`,
        'content-type': 'application/json',
      });
      return void res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized to access repository' }] }));
    }
    if (this.pageSize && /\/tags\/list/.test(path)) return void this.page(path, res);
    const headers = { ...req.headers };
    delete headers.authorization;
    const upstream = httpRequest({ host: this.upstream.host, port: this.upstream.port, method: req.method, path, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  }

  private async page(path: string, res: ServerResponse): Promise<void> {
    const url = new URL(path, 'http://proxy');
    const upstream = await fetch(`http://${this.upstream.host}:${this.upstream.port}${url.pathname}`);
    const body = (await upstream.json()) as { name: string; tags: string[] };
    const sorted = [...body.tags].sort();
    const last = url.searchParams.get('last');
    const start = last ? sorted.findIndex((t) => t > last) : 0;
    const tags = start < 0 ? [] : sorted.slice(start, start + this.pageSize!);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (start >= 0 && start + this.pageSize! < sorted.length) headers.link = `<${url.pathname}?n=${this.pageSize}&last=${tags.at(-1)}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: body.name, tags }));
  }

  private issue(req: IncomingMessage, res: ServerResponse): void {
    this.counts.token++;
    const expected = `Basic ${Buffer.from(`${this.token?.user}:${this.token?.password}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    const token = `t-${this.tokens.size}-${Math.random().toString(36).slice(2)}`;
    this.tokens.add(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  }
}
