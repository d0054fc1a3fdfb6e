import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { pushFirmware, type PushOptions } from '../../src/firmware/push.js';
import { RegistryClient } from '../../src/firmware/registry.js';

/** A fake ESP32 image: first byte 0xE9, like the real ones (Arduino's updater checks it). */
export function fakeImage(size: number): Buffer {
  const bytes = randomBytes(size);
  bytes[0] = 0xe9;
  return bytes;
}

export async function push(registryHost: string, options: PushOptions & { user?: { name: string; password: string } }) {
  const client = new RegistryClient({ url: registryHost, insecure: true, username: options.user?.name, password: options.user?.password });
  return pushFirmware(client, options);
}

/** Harbor's PUSH_ARTIFACT payload for <project>/<name>:<tag>, as Harbor sends it. */
export function harborPush(project: string, name: string, tag: string, digest = 'sha256:00') {
  return {
    type: 'PUSH_ARTIFACT',
    occur_at: 1700000000,
    operator: 'robot$ci',
    event_data: {
      resources: [{ digest, tag, resource_url: `harbor.local/${project}/${name}:${tag}` }],
      repository: { date_created: 1690000000, name, namespace: project, repo_full_name: `${project}/${name}`, repo_type: 'private' },
    },
  };
}

/**
 * What the author's ESP32 firmware does over a raw socket: a stray CRLF before the request
 * line, GET /version with keep-alive, reads until the body holds two newlines, then GET
 * /firmware on the same connection with Connection: close, and everything after the headers
 * until EOF is the image.
 */
export function esp32Update(port: number, device: string): Promise<{ versionBody: string; versionHead: string; firmwareHead: string; image: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    let phase: 'version' | 'firmware' = 'version';
    let versionHead = '';
    let versionBody = '';
    socket.on('connect', () => socket.write(`\r\nGET /version?device=${device} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (phase !== 'version') return;
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const body = buffer.subarray(end + 4).toString();
      if (body.split('\n').length < 3) return;
      versionHead = buffer.subarray(0, end).toString();
      versionBody = body;
      buffer = Buffer.alloc(0);
      phase = 'firmware';
      socket.write(`GET /firmware?device=${device} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    socket.on('end', () => {
      const end = buffer.indexOf('\r\n\r\n');
      if (phase !== 'firmware' || end < 0) return reject(new Error(`connection ended in phase ${phase}: ${buffer.toString().slice(0, 200)}`));
      resolve({ versionBody, versionHead, firmwareHead: buffer.subarray(0, end).toString(), image: buffer.subarray(end + 4) });
    });
    socket.on('error', reject);
  });
}
