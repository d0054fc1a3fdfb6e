import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { makePki } from '../support/certs.js';

/** An embedded broker reachable off loopback must be closed: TLS, users, no anonymous clients
 * (as http.host off loopback needs a token). Refused with one line naming the key. */

const dir = mkdtempSync(join(tmpdir(), 'edgevisor-broker-config-'));
const passwords = join(dir, 'passwd');
writeFileSync(passwords, 'app:$7$101$ePUmiCO8rIUzR54o$/TqeiOkmzShl6SzC+RAItDY7g+txEc69da2yW4BaBZV2qoKoRC+/qCCEa6QimTaiE3+J/0x5yH21oinNhjj43A==\n');
const pki = makePki();
const tls = { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca };

const load = (mqtt: Record<string, unknown>) => {
  const file = join(dir, `c-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ mqtt }));
  return loadConfig({ file });
};
const errorOf = (result: ReturnType<typeof loadConfig>) => (result.ok ? undefined : result.error);
const OPEN = 'config: mqtt.embeddedHost: a non-loopback embeddedHost needs embeddedTls, an embeddedPasswordFile and embeddedAllowAnonymous off';

describe('embedded broker config', () => {
  it.each([
    ['a broker on all interfaces with nothing else', { embeddedHost: '0.0.0.0' }, OPEN],
    ['a broker on a LAN address without TLS', { embeddedHost: '192.168.1.10', embeddedPasswordFile: passwords }, OPEN],
    ['a broker with TLS but no users', { embeddedHost: '::', embeddedTls: tls }, OPEN],
    [
      'a broker with TLS and users but anonymous allowed',
      { embeddedHost: '0.0.0.0', embeddedTls: tls, embeddedPasswordFile: passwords, embeddedAllowAnonymous: true },
      OPEN,
    ],
    [
      'a jobs service user without a password file',
      { embeddedJobsServiceUser: 'svc' },
      'config: mqtt.embeddedJobsServiceUser: embeddedJobsServiceUser names a user of embeddedPasswordFile, which is not set',
    ],
    [
      'an unreadable password file',
      { embeddedPasswordFile: '/nonexistent/passwd' },
      'config: mqtt.embeddedPasswordFile: cannot read /nonexistent/passwd: ENOENT',
    ],
    [
      'an unreadable TLS key',
      { embeddedTls: { cert: pki.serverCert, key: '/nonexistent/key.pem' } },
      'config: mqtt.embeddedTls.key: cannot read /nonexistent/key.pem: ENOENT',
    ],
  ])('refuses %s, in one line', (_what, mqtt, expected) => {
    const error = errorOf(load(mqtt));
    expect(error).toBe(expected);
  });

  it('takes a non-loopback embeddedHost with TLS, users and no anonymous clients', () => {
    const result = load({ embeddedHost: '0.0.0.0', embeddedTls: tls, embeddedPasswordFile: passwords });
    expect(errorOf(result)).toBeUndefined();
    expect(result.ok && result.config.mqtt.embeddedAllowAnonymous).toBe(false);
  });

  it('has closed, bounded defaults', () => {
    const result = load({});
    expect(result.ok && result.config.mqtt).toMatchObject({
      embeddedHost: '127.0.0.1',
      embeddedAllowAnonymous: false,
      embeddedLimits: {
        maxPacketBytes: 262_144,
        maxConnections: 100,
        maxRetainedMessages: 1000,
        maxRetainedBytes: 4_194_304,
        maxInflight: 100,
        connectTimeoutSeconds: 10,
      },
    });
  });
});
