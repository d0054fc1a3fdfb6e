import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envKeys } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'edgevisor-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const errorOf = (result: ReturnType<typeof loadConfig>) => (result.ok ? undefined : result.error);

describe('config', () => {
  it('runs on embedded defaults with no file', () => {
    const result = loadConfig();
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.mqtt.url).toBe('embedded');
    expect(result.config.mqtt.embeddedPort).toBe(1883);
    expect(result.config.http).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(result.config.stateDir).toBe('./var');
  });

  it('reads every key DESIGN.md names from a JSON file', () => {
    const path = file(
      'full.json',
      JSON.stringify({
        thingName: 'press-17',
        stateDir: '/var/lib/edgevisor',
        mqtt: { url: 'mqtts://broker.example:8883', clientId: 'press-17', username: 'u', password: 'p', tls: {} },
        http: { host: '127.0.0.1', port: 9000, token: 'a-long-enough-token' },
        jobs: { enabled: false, allowlist: ['/usr/bin/uptime', '/opt/jobs/'], handlerDir: '/opt/handlers', defaultTimeoutSeconds: 60 },
        firmware: {
          enabled: false,
          registry: { url: 'http://127.0.0.1:5000', repositoryPrefix: 'fw', username: 'a', password: 'b', insecure: true },
          cacheDir: '/tmp/fw',
          maxCacheBytes: 1000,
          notifyTopicPrefix: 'ota',
        },
        devices: { enabled: false, profilesDir: 'profiles', ports: [{ path: '/dev/ttyAMA0', profile: 'nmea' }] },
        monitor: { enabled: false, intervalSeconds: 5, alerts: [], slackWebhookUrl: 'https://hooks.slack.example/x' },
      }),
    );
    const result = loadConfig({ file: path });
    expect(errorOf(result)).toBeUndefined();
    if (result.ok) expect(result.config.firmware.registry.repositoryPrefix).toBe('fw');
  });

  it('accepts the shipped deploy/config.example.json (TLS files aside, which do not exist here)', () => {
    const example = JSON.parse(readFileSync(join(import.meta.dirname, '../../deploy/config.example.json'), 'utf8'));
    example.mqtt.tls = {};
    const result = loadConfig({ file: file('example.json', JSON.stringify(example)) });
    expect(errorOf(result)).toBeUndefined();
  });

  it('reads YAML by extension', () => {
    const result = loadConfig({ file: file('c.yaml', 'thingName: yaml-thing\nhttp:\n  port: 9100\n') });
    expect(result.ok && result.config.thingName).toBe('yaml-thing');
    expect(result.ok && result.config.http.port).toBe(9100);
  });

  it('lets environment variables override keys, typed by the schema', () => {
    const result = loadConfig({
      file: file('env.json', '{"thingName":"from-file","http":{"port":9000}}'),
      env: { EDGEVISOR_THING_NAME: 'from-env', EDGEVISOR_HTTP__PORT: '9001', EDGEVISOR_JOBS__ALLOWLIST: '["/bin/true"]', EDGEVISOR_JOBS__ENABLED: 'true' },
    });
    expect(errorOf(result)).toBeUndefined();
    if (!result.ok) return;
    expect(result.config.thingName).toBe('from-env');
    expect(result.config.http.port).toBe(9001);
    expect(result.config.jobs).toMatchObject({ enabled: true, allowlist: ['/bin/true'] });
    expect(envKeys().map((k) => k.name)).toContain('EDGEVISOR_MQTT__TLS__CA');
  });

  it.each([
    ['an unknown key', '{"mqtt":{"ulr":"x"}}', {}, 'config: mqtt.ulr: unknown key'],
    ['an unknown top-level key', '{"colour":"red"}', {}, 'config: colour: unknown key'],
    ['a wrong type', '{"http":{"port":"eighty"}}', {}, 'config: http.port: Invalid input: expected number, received string'],
    ['a port out of range', '{"http":{"port":70000}}', {}, 'config: http.port: Too big: expected number to be <=65535'],
    ['a bad broker URL', '{"mqtt":{"url":"http://x"}}', {}, 'config: mqtt.url: must be "embedded" or an mqtt://, mqtts://, ws:// or wss:// URL'],
    ['a bad thing name', '{"thingName":"a b"}', {}, 'config: thingName: must be 1-128 characters'],
    ['an open listener without a token', '{"http":{"host":"0.0.0.0"}}', {}, 'config: http.token: a token (at least 16 characters) is required'],
    ['invalid JSON', '{"http":', {}, 'not valid JSON'],
    ['a bad env number', '{}', { EDGEVISOR_HTTP__PORT: 'x' }, 'config: EDGEVISOR_HTTP__PORT: "x" is not a number'],
    ['an unreadable TLS file', '{"mqtt":{"tls":{"ca":"/nonexistent/ca.pem"}}}', {}, 'config: mqtt.tls.ca: cannot read /nonexistent/ca.pem: ENOENT'],
  ])('refuses %s with one line naming the key', (_what, text, env, expected) => {
    const error = errorOf(loadConfig({ file: file('bad.json', text), env }));
    expect(error).toBeDefined();
    expect(error).toContain(expected);
    expect(error).not.toContain('\n');
  });

  it('names a missing file', () => {
    expect(errorOf(loadConfig({ file: join(dir, 'missing.json') }))).toMatch(/^config: cannot read .*missing\.json: ENOENT/);
  });
});

describe('deploy/config.schema.json', () => {
  it('is generated from the schema (run `npm run config-schema` after a change)', async () => {
    const { configJsonSchema, schemaFile } = await import('../../scripts/config-schema.js');
    expect(readFileSync(schemaFile, 'utf8')).toBe(configJsonSchema());
  });
});

describe('docs/config.md', () => {
  it('is generated from the schema (run `npm run config-schema` after a change)', async () => {
    const { configReference, referenceFile } = await import('../../scripts/config-schema.js');
    expect(readFileSync(referenceFile, 'utf8')).toBe(configReference());
  });
});
