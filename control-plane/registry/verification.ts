import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { signedModelPayload, type CompanionRole, type ModelVersion, type VerifyReport } from '../../shared/registry.ts';
import { verifyPayload } from '../../shared/signing.ts';
import type { Logger } from '../log.ts';
import { hashFile } from './staging.ts';
import { sha256Hex } from '../../shared/hash.ts';
import type { Result } from '../../shared/result.ts';

/** Files up to this size are served from the very bytes that were hashed; larger ones are hashed, then streamed. */
const SERVE_FROM_MEMORY_MAX = 64 << 20;

/** A registered file no longer matches its hash (or its record its signature): never handed out. */
export class RegistryIntegrityError extends Error {
  constructor(readonly report: VerifyReport) {
    super(`model ${report.id} v${report.version} failed verification: ${report.problems.join('; ')}`);
  }
}

export type VerifiedFile = Result<{ path: string; sha256: string; size: number; bytes?: Buffer }>;

/** Recomputes the file's and companions' hashes and checks the signature against the record (paths absolute). */
export async function verifyVersion(m: ModelVersion, publicKeyPem: string, log: Logger): Promise<VerifyReport> {
  const problems: string[] = [];
  const signatureOk = verifyPayload(signedModelPayload(m), m.signature, publicKeyPem);
  if (!signatureOk) problems.push('the signature does not match the stored model record');
  let actual: { sha256: string; size: number } | null = null;
  try {
    actual = await hashFile(m.filePath);
  } catch (e) {
    problems.push(`model file unreadable: ${(e as Error).message}`);
  }
  const fileOk = actual !== null && actual.sha256 === m.sha256 && actual.size === m.size;
  if (actual && !fileOk) problems.push(`model file changed on disk: sha256 ${actual.sha256} (${actual.size} bytes), registered ${m.sha256} (${m.size} bytes)`);
  const companions: VerifyReport['companions'] = [];
  for (const c of m.companions) {
    let problem: string | null = null;
    try {
      const h = await hashFile(c.path);
      if (h.sha256 !== c.sha256) problem = `sha256 ${h.sha256}, registered ${c.sha256}`;
    } catch (e) {
      problem = `unreadable: ${(e as Error).message}`;
    }
    if (problem) problems.push(`companion ${c.role}: ${problem}`);
    companions.push({ role: c.role, path: c.path, ok: problem === null, problem });
  }
  const ok = problems.length === 0;
  if (!ok) log.error('model version failed verification', { modelId: m.id, version: m.version, problems });
  return {
    id: m.id,
    version: m.version,
    ok,
    file: { path: m.filePath, exists: existsSync(m.filePath), expectedSha256: m.sha256, actualSha256: actual?.sha256 ?? null, expectedSize: m.size, actualSize: actual?.size ?? null, ok: fileOk },
    signature: { ok: signatureOk, algorithm: 'ed25519' },
    companions,
    problems,
  };
}

/**
 * The model file (or a companion) checked against its registered hash right before it is served:
 * a file changed on disk is refused, never served silently. Small files come back as the very
 * bytes that were hashed.
 */
export async function openVerifiedFile(m: ModelVersion, companion: CompanionRole | undefined, publicKeyPem: string, log: Logger): Promise<VerifiedFile> {
  const { id, version } = m;
  if (!verifyPayload(signedModelPayload(m), m.signature, publicKeyPem)) {
    log.error('refused to serve a model whose record does not match its signature', { modelId: id, version });
    return { ok: false, error: 'the stored model record does not match its signature' };
  }
  const target = companion === undefined ? { path: m.filePath, sha256: m.sha256, size: m.size } : m.companions.find((c) => c.role === companion);
  if (!target) return { ok: false, error: `model version has no ${companion} companion` };
  let bytes: Buffer | undefined;
  let actual: string;
  try {
    const st = await stat(target.path);
    if (st.size <= SERVE_FROM_MEMORY_MAX) {
      bytes = await readFile(target.path);
      actual = sha256Hex(bytes);
    } else {
      actual = (await hashFile(target.path)).sha256;
    }
  } catch (e) {
    return { ok: false, error: `file unreadable: ${(e as Error).message}` };
  }
  if (actual !== target.sha256) {
    log.error('refused to serve a tampered file', { modelId: id, version, companion: companion ?? null, expected: target.sha256, actual });
    return { ok: false, error: `${companion ?? 'model'} file changed on disk: sha256 ${actual}, registered ${target.sha256}` };
  }
  return { ok: true, value: { path: target.path, sha256: target.sha256, size: target.size, ...(bytes ? { bytes } : {}) } };
}
