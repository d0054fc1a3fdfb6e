import { createHash, pbkdf2, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * The users of the embedded broker, from a password file in mosquitto_passwd's format
 * (`user:$7$iterations$salt$hash`, PBKDF2-HMAC-SHA512, mosquitto 2's default; or
 * `user:$6$salt$hash`, salted SHA-512, mosquitto 1.x). Operators make it with the tool they
 * already have (`mosquitto_passwd -c FILE USER`), and it is checked with node:crypto alone.
 */

type Hash = { kind: 'pbkdf2'; iterations: number; salt: Buffer; hash: Buffer } | { kind: 'sha512'; salt: Buffer; hash: Buffer };

/** The longest password file accepted: a few thousand users at most on an edge box. */
const MAX_FILE_BYTES = 1024 * 1024;
/** PBKDF2 iterations accepted at most: a hand-edited file must not make a login cost minutes. */
const MAX_ITERATIONS = 1_000_000;

export class PasswordFile {
  private constructor(private readonly users: Map<string, Hash>) {}

  /** Reads and checks the whole file; throws with the file and line of the first bad one. */
  static load(path: string): PasswordFile {
    const text = readFileSync(path, 'utf8');
    if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new Error(`${path}: larger than ${MAX_FILE_BYTES} bytes`);
    const users = new Map<string, Hash>();
    text.split('\n').forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const hash = colon > 0 ? parseHash(line.slice(colon + 1)) : undefined;
      if (!hash) throw new Error(`${path}:${index + 1}: not a mosquitto_passwd line (user:$7$… or user:$6$…)`);
      users.set(line.slice(0, colon), hash);
    });
    return new PasswordFile(users);
  }

  has(username: string): boolean {
    return this.users.has(username);
  }

  get size(): number {
    return this.users.size;
  }

  /** True when the password matches the user's hash; false for an unknown user. */
  async verify(username: string, password: Buffer): Promise<boolean> {
    const entry = this.users.get(username);
    if (!entry) return false;
    const computed =
      entry.kind === 'pbkdf2'
        ? await new Promise<Buffer>((resolve, reject) =>
            pbkdf2(password, entry.salt, entry.iterations, entry.hash.length, 'sha512', (error, key) => (error ? reject(error) : resolve(key))),
          )
        : createHash('sha512').update(password).update(entry.salt).digest();
    return computed.length === entry.hash.length && timingSafeEqual(computed, entry.hash);
  }
}

function parseHash(text: string): Hash | undefined {
  const parts = text.split('$');
  const b64 = (s: string | undefined) => (s && /^[A-Za-z0-9+/]+={0,2}$/.test(s) ? Buffer.from(s, 'base64') : undefined);
  if (parts[0] !== '') return undefined;
  if (parts[1] === '7' && parts.length === 5) {
    const iterations = Number(parts[2]);
    const [salt, hash] = [b64(parts[3]), b64(parts[4])];
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS || !salt || !hash) return undefined;
    return { kind: 'pbkdf2', iterations, salt, hash };
  }
  if (parts[1] === '6' && parts.length === 4) {
    const [salt, hash] = [b64(parts[2]), b64(parts[3])];
    return salt && hash ? { kind: 'sha512', salt, hash } : undefined;
  }
  return undefined;
}
