import { describe, expect, it } from 'vitest';
import { WsTickets } from '../../../src/http/ws-tickets.js';

describe('WsTickets', () => {
  it('a ticket works once, within 30 s', () => {
    let now = 1_000;
    const tickets = new WsTickets(() => now);
    const { ticket, expiresInSeconds } = tickets.issue();
    expect(expiresInSeconds).toBe(30);
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(tickets.redeem(ticket)).toBe(true);
    expect(tickets.redeem(ticket)).toBe(false);

    const late = tickets.issue().ticket;
    now += 30_000;
    expect(tickets.redeem(late)).toBe(false);
    expect(tickets.redeem(undefined)).toBe(false);
    expect(tickets.redeem('')).toBe(false);
  });

  it('holds a bounded number; expired ones are dropped when new ones are issued', () => {
    let now = 0;
    const tickets = new WsTickets(() => now);
    const first = tickets.issue().ticket;
    for (let i = 0; i < 2000; i++) tickets.issue();
    expect(tickets.size).toBe(1024);
    expect(tickets.redeem(first)).toBe(false); // the oldest went first
    now += 31_000;
    tickets.issue();
    expect(tickets.size).toBe(1);
  });
});
