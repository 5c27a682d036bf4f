import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { BoundedMap } from './bounded-map.ts';

/** JSON with object keys sorted at every level, so the signer and the verifier hash the same bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export type SigningKeyPair = { publicKeyPem: string; privateKeyPem: string };

export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/**
 * Parsed keys by PEM: a process signs (or verifies) with one or two keys, and parsing the PEM each time cost more than
 * the signature (createPrivateKey: 48 ms of the control plane's CPU over 20 deploys in a delivery profile). Bounded.
 */
const KEYS_KEPT = 16;
const privateKeys = new BoundedMap<string, KeyObject>(KEYS_KEPT);
const publicKeys = new BoundedMap<string, KeyObject>(KEYS_KEPT);

/** ed25519 signature (base64) over the canonical JSON of `payload`. */
export function signPayload(payload: unknown, privateKeyPem: string): string {
  return sign(null, Buffer.from(canonicalJson(payload)), privateKeys.getOrSet(privateKeyPem, () => createPrivateKey(privateKeyPem))).toString('base64');
}

export function verifyPayload(payload: unknown, signatureB64: string, publicKeyPem: string): boolean {
  try {
    return verify(null, Buffer.from(canonicalJson(payload)), publicKeys.getOrSet(publicKeyPem, () => createPublicKey(publicKeyPem)), Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}

/** Signs a manifest-like object: the signature covers every field but `signature`. */
export function signManifest<T extends Record<string, unknown>>(unsigned: T, privateKeyPem: string): T & { signature: string } {
  return { ...unsigned, signature: signPayload(unsigned, privateKeyPem) };
}

export function verifyManifest(manifest: Record<string, unknown> & { signature: string }, publicKeyPem: string): boolean {
  const { signature, ...rest } = manifest;
  return verifyPayload(rest, signature, publicKeyPem);
}
