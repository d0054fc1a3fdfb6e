import { randomBytes } from 'node:crypto';

/** How long a ticket may wait for its WebSocket; the page asks for one just before connecting. */
export const TICKET_TTL_MS = 30_000;
/** Outstanding tickets at most: one per open page is the normal case; beyond this the oldest go. */
const MAX_TICKETS = 1024;

/**
 * Short-lived, single-use tickets for /ws. A browser cannot put an Authorization header on a
 * WebSocket, and the token must not travel in a URL (access logs, history, Referer); so the page
 * trades its bearer token for a ticket (POST /api/v1/ws-ticket) and opens /ws?ticket=…. A ticket
 * is 128 random bits, works once, and expires after 30 s: once used, it is worthless in a log.
 */
export class WsTickets {
  private readonly tickets = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  issue(): { ticket: string; expiresInSeconds: number } {
    this.prune();
    if (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket = randomBytes(16).toString('base64url');
    this.tickets.set(ticket, this.now() + TICKET_TTL_MS);
    return { ticket, expiresInSeconds: TICKET_TTL_MS / 1000 };
  }

  /** True once for a ticket issued less than 30 s ago; it is gone afterwards either way. */
  redeem(ticket: string | undefined): boolean {
    if (!ticket) return false;
    const expires = this.tickets.get(ticket);
    if (expires === undefined) return false;
    this.tickets.delete(ticket);
    return expires > this.now();
  }

  get size(): number {
    return this.tickets.size;
  }

  private prune(): void {
    const now = this.now();
    // insertion order is expiry order (same TTL for all): stop at the first live one
    for (const [ticket, expires] of this.tickets) {
      if (expires > now) break;
      this.tickets.delete(ticket);
    }
  }
}
