import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

type Interfaces = () => ReturnType<typeof networkInterfaces>;

/** How often the interface addresses may be read again when a Host is not known (DHCP moves them). */
const REREAD_MS = 5000;

/** "Example.com" from "Example.com:8080", "::1" from "[::1]:8080": lower case, no port, no trailing dot. */
export function hostnameOf(header: string): string {
  const value = header.trim().toLowerCase();
  const name = value.startsWith('[') ? value.slice(1, value.indexOf(']')) : value.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1' || name === '::ffff:127.0.0.1';
}

/**
 * The names the API, /ws and the dashboard answer to (a DNS-rebinding guard: a page that
 * rebinds its own name to this box still sends its own name as Host). Loopback names, the
 * listen address when it is a specific one, the box's host name (and name.local), its
 * interface addresses (read again, at most every few seconds, when a Host is not known) and
 * http.allowedHosts.
 */
export class AllowedHosts {
  private readonly fixed = new Set<string>();
  private addresses = new Set<string>();
  private readAt = 0;

  constructor(
    options: { listenHost: string; allowedHosts: readonly string[] },
    private readonly interfaces: Interfaces = networkInterfaces,
    boxName: string = hostname(),
  ) {
    const listen = hostnameOf(options.listenHost.includes(':') && !options.listenHost.startsWith('[') ? `[${options.listenHost}]` : options.listenHost);
    if (listen && listen !== '0.0.0.0' && listen !== '::') this.fixed.add(listen);
    const box = boxName.toLowerCase();
    this.fixed.add(box).add(`${box}.local`);
    const short = box.split('.')[0];
    if (short) this.fixed.add(short).add(`${short}.local`);
    for (const name of options.allowedHosts) this.fixed.add(hostnameOf(name));
  }

  /** Whether a request with this Host header may reach the guarded routes (no Host: an HTTP/1.0 client, not a browser). */
  allows(header: string | undefined): boolean {
    if (header === undefined || header === '') return true;
    const name = hostnameOf(header);
    if (isLoopbackName(name) || this.fixed.has(name) || this.addresses.has(name)) return true;
    if (Date.now() - this.readAt < REREAD_MS) return false;
    this.readAddresses();
    return this.addresses.has(name);
  }

  private readAddresses(): void {
    this.readAt = Date.now();
    const found = new Set<string>();
    for (const list of Object.values(this.interfaces())) {
      for (const entry of list ?? []) found.add(entry.address.toLowerCase().replace(/%.*$/, ''));
    }
    this.addresses = found;
  }
}
