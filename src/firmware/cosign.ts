import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { sha256, type RegistryClient } from './registry.js';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

/** The tag cosign stores a manifest's signatures under: sha256-<hex>.sig */
export const signatureTag = (manifestDigest: string) => `${manifestDigest.replace(':', '-')}.sig`;

export function loadPublicKey(pem: string): KeyObject {
  return createPublicKey(pem);
}

/**
 * Cosign key-based verification as OtaFlux does it: the `sha256-<hex>.sig` manifest in the
 * same repository holds simple-signing payloads as layers, each with a base64 signature in an
 * annotation; one must verify with the public key and name this manifest digest.
 */
export async function verifyCosign(client: RegistryClient, repo: string, manifestDigest: string, key: KeyObject): Promise<void> {
  const sig = await client.getManifest(repo, signatureTag(manifestDigest)).catch((error: Error) => {
    throw new Error(`cosign: no signature for ${manifestDigest}: ${error.message}`);
  });
  for (const layer of sig.json.layers ?? []) {
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (!signature || layer.size > 64 * 1024) continue;
    const payload = await client.getBlob(repo, layer.digest, 64 * 1024);
    if (sha256(payload) !== layer.digest) continue;
    if (!verify('sha256', payload, key, Buffer.from(signature, 'base64'))) continue;
    let signed: string | undefined;
    try {
      signed = JSON.parse(payload.toString('utf8'))?.critical?.image?.['docker-manifest-digest'];
    } catch {
      continue;
    }
    if (signed === manifestDigest) return;
  }
  throw new Error(`cosign: no valid signature by the configured key for ${manifestDigest}`);
}
