import { createHash } from 'node:crypto';

/** Docker Distribution v2 / OCI distribution client: what the firmware concern needs to read
 * (tags with Link paging, manifests, blobs) and a test or a script needs to push. Anonymous,
 * Basic, and Bearer token auth (the WWW-Authenticate challenge flow Harbor and GHCR use). */

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;
const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');
const INDEXES: string[] = [MEDIA.ociIndex, MEDIA.dockerList];
const IMAGES: string[] = [MEDIA.ociManifest, MEDIA.dockerManifest];

export interface RegistryOptions {
  /** host[:port] (https, or http when insecure) or http(s)://host[:port] */
  url: string;
  insecure?: boolean;
  username?: string;
  password?: string;
  /** per request, except blob bodies */
  timeoutMs?: number;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code = 'registry_error',
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Manifest {
  /** the digest of the exact bytes, checked against Docker-Content-Digest */
  digest: string;
  mediaType: string;
  body: Buffer;
  json: { mediaType?: string; layers?: Descriptor[]; manifests?: Descriptor[]; config?: Descriptor; artifactType?: string };
}

export const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Parses `Bearer realm="…",service="…",scope="…"` (or Basic) challenges. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = /^(\w+)\s*(.*)$/s.exec(header.trim());
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)="([^"]*)"|(\w+)=([^,\s]*)/g)) params[(p[1] ?? p[3]).toLowerCase()] = p[2] ?? p[4];
  return { scheme: m[1].toLowerCase(), params };
}

export class RegistryClient {
  readonly base: string;
  readonly stats = { requests: 0, errors: 0 };
  private readonly tokens = new Map<string, { token: string; until: number }>();
  /** what the registry asked for last time: send it up front instead of a 401 round trip */
  private scheme: 'none' | 'basic' | 'bearer' = 'none';

  constructor(private readonly options: RegistryOptions) {
    const url = options.url.replace(/\/+$/, '');
    this.base = /^https?:\/\//.test(url) ? url : `${options.insecure ? 'http' : 'https'}://${url}`;
  }

  /** GET /v2/: resolves when the registry answers at all (an auth challenge is an answer). */
  async ping(): Promise<void> {
    const res = await this.request('/v2/', { scope: 'registry:catalog:*', allow: [401] });
    await res.body?.cancel();
  }

  /** Every tag of a repository, following `Link: <…>; rel="next"` pages (bounded). */
  async listTags(repo: string): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repo}/tags/list?n=1000`;
    for (let page = 0; next && page < 100; page++) {
      const res = await this.request(next, { scope: pullScope(repo) });
      const body = (await res.json()) as { tags?: unknown };
      if (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags))
        throw new RegistryError('tags/list: "tags" is not a list', res.status, 'bad_response');
      for (const tag of (body.tags as unknown[] | null | undefined) ?? []) if (typeof tag === 'string') tags.push(tag);
      next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
    }
    return tags;
  }

  /** A manifest by tag or digest, checked against Docker-Content-Digest and, by digest, its reference. */
  async getManifest(repo: string, reference: string): Promise<Manifest> {
    const res = await this.request(`/v2/${repo}/manifests/${reference}`, { scope: pullScope(repo), accept: MANIFEST_ACCEPT });
    const body = Buffer.from(await res.arrayBuffer());
    const digest = sha256(body);
    const announced = res.headers.get('docker-content-digest');
    if (announced && announced !== digest)
      throw new RegistryError(`manifest ${reference}: body digest ${digest} does not match Docker-Content-Digest ${announced}`, res.status, 'digest_mismatch');
    if (reference.startsWith('sha256:') && reference !== digest)
      throw new RegistryError(`manifest ${reference}: body digest is ${digest}`, res.status, 'digest_mismatch');
    let json: Manifest['json'];
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new RegistryError(`manifest ${reference}: not JSON`, res.status, 'bad_manifest');
    }
    const mediaType = json.mediaType ?? (res.headers.get('content-type') ?? '').split(';')[0].trim();
    if (![...INDEXES, ...IMAGES].includes(mediaType))
      throw new RegistryError(`manifest ${reference}: unsupported media type "${mediaType}"`, res.status, 'bad_manifest');
    return { digest, mediaType, body, json };
  }

  /**
   * The first layer of the image a tag names, following an image index to its first
   * manifest (as OtaFlux does), with the digest of the image manifest.
   */
  async resolveLayer(repo: string, reference: string): Promise<{ manifestDigest: string; layer: Descriptor }> {
    let manifest = await this.getManifest(repo, reference);
    if (INDEXES.includes(manifest.mediaType)) {
      const first = manifest.json.manifests?.[0];
      if (!first || !DIGEST.test(first.digest)) throw new RegistryError(`index ${reference}: no manifest in it`, undefined, 'bad_manifest');
      manifest = await this.getManifest(repo, first.digest);
      if (!IMAGES.includes(manifest.mediaType))
        throw new RegistryError(`index ${reference}: its first entry is not an image manifest`, undefined, 'bad_manifest');
    }
    const layer = manifest.json.layers?.[0];
    if (!layer || typeof layer.digest !== 'string' || !DIGEST.test(layer.digest))
      throw new RegistryError(`manifest ${reference}: no sha256 layer`, undefined, 'bad_manifest');
    if (!Number.isSafeInteger(layer.size) || layer.size <= 0)
      throw new RegistryError(`manifest ${reference}: layer size ${layer.size}`, undefined, 'bad_manifest');
    return { manifestDigest: manifest.digest, layer };
  }

  /** A blob's bytes, at most `maxBytes` (more is an error, never a truncation). */
  async getBlob(repo: string, digest: string, maxBytes: number): Promise<Buffer> {
    const res = await this.request(`/v2/${repo}/blobs/${digest}`, { scope: pullScope(repo), bodyTimeout: true });
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) throw new RegistryError(`blob ${digest}: larger than ${maxBytes} bytes`, res.status, 'too_large');
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks, total);
  }

  /** Pushes a blob (monolithic upload) unless the registry has it. */
  async pushBlob(repo: string, bytes: Buffer, digest = sha256(bytes)): Promise<string> {
    const scope = `repository:${repo}:pull,push`;
    const head = await this.request(`/v2/${repo}/blobs/${digest}`, { scope, method: 'HEAD', allow: [404] });
    if (head.status === 200) return digest;
    const start = await this.request(`/v2/${repo}/blobs/uploads/`, { scope, method: 'POST' });
    const location = start.headers.get('location');
    if (!location) throw new RegistryError('blob upload: no Location', start.status);
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    await this.request(url.toString(), { scope, method: 'PUT', body: bytes, contentType: 'application/octet-stream' });
    return digest;
  }

  async pushManifest(repo: string, reference: string, manifest: { mediaType: string; [key: string]: unknown }): Promise<string> {
    const body = Buffer.from(JSON.stringify(manifest));
    await this.request(`/v2/${repo}/manifests/${reference}`, { scope: `repository:${repo}:pull,push`, method: 'PUT', body, contentType: manifest.mediaType });
    return sha256(body);
  }

  /** One request with auth: a 401 is answered once per its challenge; redirects never carry credentials to another host. */
  async request(
    path: string,
    options: { scope: string; accept?: string; method?: string; body?: Buffer; contentType?: string; allow?: number[]; bodyTimeout?: boolean },
  ): Promise<Response> {
    const method = options.method ?? 'GET';
    let url = new URL(path, this.base);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        let res: Response | undefined;
        let auth = await this.authorization(options.scope);
        for (let hop = 0; hop < 5; hop++) {
          this.stats.requests++;
          const headers: Record<string, string> = {};
          if (options.accept) headers.accept = options.accept;
          if (options.contentType) headers['content-type'] = options.contentType;
          if (auth) headers.authorization = auth;
          res = await fetch(url, {
            method,
            headers,
            body: options.body,
            redirect: 'manual',
            // A blob body may take long to arrive; the answer itself must not.
            signal: options.bodyTimeout ? AbortSignal.timeout(10 * 60_000) : AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
          });
          const location = res.headers.get('location');
          if (res.status >= 300 && res.status < 400 && location && res.status !== 304) {
            await res.body?.cancel();
            const target = new URL(location, url);
            if (target.origin !== url.origin) auth = undefined;
            url = target;
            continue;
          }
          break;
        }
        if (!res) throw new RegistryError('too many redirects', undefined);
        if (res.status === 401 && attempt === 0 && (await this.answer(res, options.scope))) continue;
        if (res.ok || options.allow?.includes(res.status)) return res;
        throw await errorOf(res, `${method} ${url.pathname}`);
      }
      throw new RegistryError(`${method} ${url.pathname}: unauthorized`, 401, 'UNAUTHORIZED');
    } catch (error) {
      this.stats.errors++;
      if (error instanceof RegistryError) throw error;
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new RegistryError(`${method} ${url.host}${url.pathname}: ${cause ?? (error as Error).message}`, undefined, 'unreachable');
    }
  }

  private basic(): string | undefined {
    const { username, password } = this.options;
    if (!username && !password) return undefined;
    return `Basic ${Buffer.from(`${username ?? ''}:${password ?? ''}`).toString('base64')}`;
  }

  private async authorization(scope: string): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basic();
    if (this.scheme !== 'bearer') return undefined;
    const token = this.tokens.get(scope);
    return token && token.until > Date.now() ? `Bearer ${token.token}` : undefined;
  }

  /** Learns from a 401: fetches a token for a Bearer challenge, or switches to Basic. Whether to try again. */
  private async answer(res: Response, scope: string): Promise<boolean> {
    await res.body?.cancel();
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    if (challenge?.scheme === 'basic') {
      if (!this.basic()) return false;
      this.scheme = 'basic';
      return true;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) return false;
    const url = new URL(challenge.params.realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? scope);
    const basic = this.basic();
    this.stats.requests++;
    const tokenRes = await fetch(url, { headers: basic ? { authorization: basic } : {}, signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000) });
    if (!tokenRes.ok) throw new RegistryError(`token service ${url.host}: ${tokenRes.status}`, tokenRes.status, 'UNAUTHORIZED');
    const body = (await tokenRes.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`token service ${url.host}: no token in the answer`, tokenRes.status, 'UNAUTHORIZED');
    // Renewed a little early; 60 s when the service says nothing (token spec).
    const lifetime = Math.max(1, (body.expires_in ?? 60) - 5) * 1000;
    this.tokens.set(scope, { token, until: Date.now() + lifetime });
    this.scheme = 'bearer';
    return true;
  }
}

const pullScope = (repo: string) => `repository:${repo}:pull`;

async function errorOf(res: Response, what: string): Promise<RegistryError> {
  let code = `HTTP_${res.status}`;
  let message = '';
  try {
    const body = (await res.json()) as { errors?: Array<{ code?: string; message?: string }> };
    code = body.errors?.[0]?.code ?? code;
    message = body.errors?.[0]?.message ?? '';
  } catch {
    // not the registry's JSON error shape
  }
  return new RegistryError(`${what}: ${res.status}${message ? ` ${message}` : ''}`, res.status, code);
}
