import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The Debian package that provides each program the tests run as a real peer. */
export const peerPackages = {
  mosquitto: 'mosquitto',
  mosquitto_passwd: 'mosquitto',
  'docker-registry': 'docker-registry',
  socat: 'socat',
  openssl: 'openssl',
  'qemu-system-x86_64': 'qemu-system-x86',
  chromium: 'chromium',
  'systemd-analyze': 'systemd',
} as const;
export type Peer = keyof typeof peerPackages;

/**
 * The path of a peer program, or one clear error naming the package to install (instead of a
 * timeout and an unhandled spawn ENOENT later).
 */
export function requirePeer(program: Peer): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    const path = join(dir, program);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  const pkg = peerPackages[program];
  throw new Error(`${program} is missing: install Debian's ${pkg} (apt-get install ${pkg}); npm run test:all does it when run as root`);
}
