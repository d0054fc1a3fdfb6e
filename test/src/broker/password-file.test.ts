import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PasswordFile } from '../../../src/broker/password-file.js';

const dir = mkdtempSync(join(tmpdir(), 'edgevisor-passwd-'));

describe('password file (mosquitto_passwd format)', () => {
  it('checks the hashes mosquitto_passwd makes, PBKDF2-SHA512 ($7$) and SHA-512 ($6$)', async () => {
    const file = join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-c', '-b', file, 'alice', 'alice-secret']);
    execFileSync('mosquitto_passwd', ['-H', 'sha512', '-b', file, 'bob', 'bob-secret']);
    const users = PasswordFile.load(file);
    expect(users.size).toBe(2);
    expect(await users.verify('alice', Buffer.from('alice-secret'))).toBe(true);
    expect(await users.verify('alice', Buffer.from('alice-secreT'))).toBe(false);
    expect(await users.verify('bob', Buffer.from('bob-secret'))).toBe(true);
    expect(await users.verify('bob', Buffer.from(''))).toBe(false);
    expect(await users.verify('carol', Buffer.from('alice-secret'))).toBe(false);
  });

  it.each([
    ['a plain-text password', 'dave:secret\n'],
    ['an unknown hash', 'dave:$2y$10$abcdefghijklmnopqrstuv\n'],
    ['absurd iterations', 'dave:$7$999999999$ePUmiCO8rIUzR54o$AAAA\n'],
    ['no user name', ':$6$c2FsdA==$aGFzaA==\n'],
  ])('refuses %s, naming the line', (_what, text) => {
    const file = join(dir, `bad-${Math.random().toString(16).slice(2)}`);
    writeFileSync(file, `# users\n${text}`);
    expect(() => PasswordFile.load(file)).toThrow(`${file}:2: not a mosquitto_passwd line`);
  });
});
