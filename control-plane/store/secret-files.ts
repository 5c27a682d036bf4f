import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair, type SigningKeyPair } from '../../shared/signing.ts';
import type { Logger } from '../log.ts';
import type { Db } from './db.ts';
import { hashSecret, randomToken, verifySecret } from './secrets.ts';
import type { SettingsStore } from './tokens.ts';

/**
 * Where the control plane's two secrets live (issue 8 item 4). Neither is in the database any more:
 * - the model-signing private key: `<dataDir>/model-signing-key.pem`, 0600 (PKCS#8); the public key is derived from it;
 * - the operator token: `<dataDir>/operator-token`, 0600, written once when generated; the database keeps only a salted
 *   hash (`operator-token-hash`), so a copy of the database (backup, -wal) gives no API access.
 * A database from before this change is migrated: the secrets are moved out, deleted with secure_delete and the WAL
 * checkpointed, so their bytes are gone from the database files too.
 */
export const SIGNING_KEY_FILE = 'model-signing-key.pem';
export const OPERATOR_TOKEN_FILE = 'operator-token';

const readOptional = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
};

const writePrivate = (path: string, text: string): void => writeFileSync(path, text, { mode: 0o600, flag: 'w' });

/** Overwrites deleted rows and empties the WAL, so a secret removed from the database leaves no bytes behind. */
function scrub(db: Db): void {
  db.pragma('wal_checkpoint(TRUNCATE)');
}

export function loadSigningKeys(dataDir: string, db: Db, settings: SettingsStore, log: Logger): SigningKeyPair {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let pem = readOptional(path);
  const legacy = settings.get('model-signing-key');
  if (!pem && legacy) {
    pem = (JSON.parse(legacy) as SigningKeyPair).privateKeyPem;
    writePrivate(path, pem);
    log.warn('model-signing private key moved out of the database into its own 0600 file', { file: path });
  } else if (!pem) {
    pem = generateSigningKeyPair().privateKeyPem;
    writePrivate(path, pem);
    log.info('generated the model-signing key pair', { file: path });
  }
  if (legacy) {
    settings.delete('model-signing-key');
    scrub(db);
  }
  const key = createPrivateKey(pem);
  return { privateKeyPem: pem, publicKeyPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString() };
}

/**
 * The operator token: the one given (option or env; nothing is stored then), else the token file's when it matches the
 * stored hash, else a new one (written to the token file once, its hash stored). A database that held the token in
 * clear is migrated: the token file gets it (if absent) and only its hash stays.
 */
export async function loadOperatorToken(dataDir: string, db: Db, settings: SettingsStore, given: string | undefined, log: Logger): Promise<string> {
  const path = join(dataDir, OPERATOR_TOKEN_FILE);
  const legacy = settings.get('operator-token');
  if (legacy) {
    if (readOptional(path)?.trim() !== legacy) writePrivate(path, legacy + '\n');
    settings.set('operator-token-hash', hashSecret(legacy));
    settings.delete('operator-token');
    scrub(db);
    log.warn('operator token moved out of the database: only its hash is stored now; the token is in the 0600 file', { file: path });
  }
  if (given) return given;
  const hash = settings.get('operator-token-hash');
  const fromFile = readOptional(path)?.trim() ?? null;
  if (hash && fromFile && (await verifySecret(fromFile, hash))) return fromFile;
  if (hash && fromFile === null) log.warn('the operator token file is missing; a new operator token was generated (the old one no longer works)', { file: path });
  else if (hash) log.warn('the operator token file does not match the stored hash; a new operator token was generated', { file: path });
  const token = `efo_${randomToken(24)}`;
  writePrivate(path, token + '\n');
  settings.set('operator-token-hash', hashSecret(token));
  log.info('generated the operator token (shown once: it is in the 0600 token file, the database keeps only its hash)', { file: path });
  return token;
}
