import { describe, expect, it } from 'vitest';
import { checkStatusDetails, lastChars, statusDetails } from '../../../src/jobs/status-details.js';

describe('statusDetails within the AWS IoT Jobs limits', () => {
  it('keeps the first ten non-empty pairs, all strings, and leaves empty ones out', () => {
    const pairs = Array.from({ length: 14 }, (_, i) => [`k${i}`, i === 2 ? '' : i] as [string, number | string]);
    const details = statusDetails(pairs);
    expect(Object.keys(details)).toEqual(['k0', 'k1', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'k10']);
    expect(details.k0).toBe('0');
    expect(checkStatusDetails(details)).toBeUndefined();
  });

  it('cuts output to its last 1,024 characters without splitting a character, and keeps newlines', () => {
    const emoji = '😀'; // two UTF-16 units
    const output = `start\n${emoji.repeat(600)}\nend`;
    const details = statusDetails([['stdout', output, true]]);
    expect(details.stdout.length).toBeLessThanOrEqual(1024);
    expect(details.stdout.endsWith('\nend')).toBe(true);
    expect(details.stdout.charCodeAt(0)).not.toBeGreaterThanOrEqual(0xdc00); // no lone low surrogate at the start
    expect(checkStatusDetails(details)).toBeUndefined();
    expect(lastChars('a😀b'.repeat(1), 3)).toBe('😀b');
    expect(lastChars('😀😀', 3)).toBe('😀');
  });

  it('cuts a reason at its start, strips control characters, and refuses bad keys', () => {
    const details = statusDetails([
      ['reason', `bad\u0000 thing\u001b[31m happened${'!'.repeat(2000)}`],
      ['bad key', 'x'],
      ['exitCode', 1],
    ]);
    expect(details.reason.startsWith('bad thing[31m happened')).toBe(true);
    expect(details.reason).toHaveLength(1024);
    expect(details).not.toHaveProperty('bad key');
    expect(details.exitCode).toBe('1');
  });

  it('the checker names what breaks the limits', () => {
    expect(checkStatusDetails({ a: '' })).toMatch(/1 to 1024/);
    expect(checkStatusDetails({ a: 1 })).toMatch(/must be a string/);
    expect(checkStatusDetails({ 'a b': 'x' })).toMatch(/must match/);
    expect(checkStatusDetails(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])))).toMatch(/at most 10/);
    expect(checkStatusDetails({ a: 'x'.repeat(1025) })).toMatch(/1 to 1024/);
    expect(checkStatusDetails({ a: 'tab\there' })).toMatch(/control/);
  });
});
