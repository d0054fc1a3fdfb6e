import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../../src/config/schema.js';
import { redactSecrets } from '../../../src/config/redact.js';
import { AllowedHosts, hostnameOf } from '../../../src/http/allowed-hosts.js';
import { httpWarnings } from '../../../src/http/startup-warnings.js';
import { TokenBucket } from '../../../src/http/token-bucket.js';

const interfaces = (addresses: string[]) => () => ({ eth0: addresses.map((address) => ({ address }) as never) });

describe('AllowedHosts', () => {
  it('takes loopback names, the listen address, the box name, its interface addresses and http.allowedHosts; refuses the rest', () => {
    const hosts = new AllowedHosts({ listenHost: '10.0.0.5', allowedHosts: ['edge.example.com'] }, interfaces(['192.168.1.20', 'fe80::1%eth0']), 'Pi-Kitchen');
    for (const host of [
      'localhost:8080',
      'app.localhost',
      '127.0.0.1:8080',
      '[::1]:8080',
      '10.0.0.5:8080',
      'pi-kitchen',
      'pi-kitchen.local:8080',
      '192.168.1.20:8080',
      '[fe80::1]:8080',
      'EDGE.example.com.',
      undefined,
    ]) {
      expect(hosts.allows(host), String(host)).toBe(true);
    }
    for (const host of ['evil.example:8080', '10.0.0.6', 'localhost.evil.example', '127.0.0.1.nip.io']) expect(hosts.allows(host), host).toBe(false);
  });

  it('does not take the wildcard listen address as a name', () => {
    const hosts = new AllowedHosts({ listenHost: '0.0.0.0', allowedHosts: [] }, interfaces([]), 'box');
    expect(hosts.allows('0.0.0.0:8080')).toBe(false);
    expect(hostnameOf('[::1]:80')).toBe('::1');
  });
});

describe('redactSecrets', () => {
  it('replaces every secret by key name, nested and in arrays, and keeps the rest', () => {
    const config = ConfigSchema.parse({
      http: { token: 'x'.repeat(16) },
      mqtt: { password: 'p' },
      firmware: { webhookSecret: 'w', registry: { password: 'r', username: 'u' } },
      monitor: { slackWebhookUrl: 'https://hooks.slack.com/services/a/b/c' },
    });
    const out = redactSecrets({ ...config, users: [{ username: 'a', password: 'b' }] });
    expect(out.http.token).toBe('***');
    expect(out.mqtt.password).toBe('***');
    expect(out.firmware.webhookSecret).toBe('***');
    expect(out.firmware.registry).toMatchObject({ password: '***', username: 'u' });
    expect(out.monitor.slackWebhookUrl).toBe('***');
    expect(out.users).toEqual([{ username: 'a', password: '***' }]);
    expect(config.http.token).toBe('x'.repeat(16));
  });
});

describe('httpWarnings', () => {
  const firmware = { enabled: true, registry: { url: 'registry.local' } };
  it('recommends a webhook secret when the webhook is reachable off loopback without one', () => {
    const open = ConfigSchema.parse({ http: { host: '0.0.0.0', token: 'x'.repeat(16) }, firmware });
    expect(httpWarnings(open).map((w) => w.key)).toEqual(['firmware.webhookSecret']);
    expect(httpWarnings(ConfigSchema.parse({ firmware }))).toEqual([]);
    expect(httpWarnings(ConfigSchema.parse({ http: { host: '0.0.0.0', token: 'x'.repeat(16) }, firmware: { ...firmware, webhookSecret: 's' } }))).toEqual([]);
  });
});

describe('TokenBucket', () => {
  it('gives the burst at once, then the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    now += 100;
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    now += 10_000;
    expect(Array.from({ length: 5 }, () => bucket.take()).filter(Boolean)).toHaveLength(3);
  });
});
