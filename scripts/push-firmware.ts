/**
 * Pushes a firmware file to an OCI registry as edgevisor (and OtaFlux) read it: one layer,
 * the raw bytes, tagged with a semver version, in <prefix>/<device>.
 *
 *   npm run push-firmware -- --registry 127.0.0.1:5000 --insecure --repo fw/esp32-kitchen --tag 1.2.0 --file build/firmware.bin
 *   (--username/--password, or EDGEVISOR_REGISTRY_USERNAME/PASSWORD; --layout oras|index|docker)
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { pushFirmware } from '../src/firmware/push.js';
import { RegistryClient } from '../src/firmware/registry.js';

const { values } = parseArgs({
  options: {
    registry: { type: 'string' },
    repo: { type: 'string' },
    tag: { type: 'string' },
    file: { type: 'string' },
    insecure: { type: 'boolean', default: false },
    username: { type: 'string', default: process.env.EDGEVISOR_REGISTRY_USERNAME },
    password: { type: 'string', default: process.env.EDGEVISOR_REGISTRY_PASSWORD },
    'media-type': { type: 'string' },
    layout: { type: 'string', default: 'oras' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || !values.registry || !values.repo || !values.tag || !values.file) {
  process.stderr.write(
    'usage: push-firmware --registry HOST[:PORT]|URL [--insecure] --repo NAME --tag X.Y.Z --file PATH [--username U --password P] [--media-type T] [--layout oras|index|docker]\n',
  );
  process.exit(values.help ? 0 : 2);
}
if (!['oras', 'index', 'docker'].includes(values.layout!)) {
  process.stderr.write(`push-firmware: unknown layout "${values.layout}"\n`);
  process.exit(2);
}
const client = new RegistryClient({ url: values.registry, insecure: values.insecure, username: values.username, password: values.password });
const bytes = readFileSync(values.file);
const result = await pushFirmware(client, {
  repo: values.repo,
  tag: values.tag,
  bytes,
  mediaType: values['media-type'],
  fileName: basename(values.file),
  layout: values.layout as 'oras' | 'index' | 'docker',
});
process.stdout.write(`${JSON.stringify({ repo: values.repo, tag: values.tag, ...result })}\n`);
