import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startAgent } from '../../agent/index.ts';
import { createLogger, silentLogger } from '../../control-plane/log.ts';
import { startControlPlane, type ControlPlaneOptions } from '../../control-plane/server.ts';
import { openDatabase } from '../../control-plane/store/db.ts';
import { OPERATOR_TOKEN_FILE, SIGNING_KEY_FILE } from '../../control-plane/store/secret-files.ts';
import { generateSigningKeyPair } from '../../shared/signing.ts';
import { SIMULATED } from '../helpers/simulated-devices.ts';

/**
 * Issue 8 item 4: edgefleet.db and its -wal were 0644 in a 0755 data folder and held the operator token in clear and
 * the model-signing private key. Replayed: a data folder made world-readable (with a world-readable db from before the
 * fix, holding both secrets in clear) is fixed at start and logged; afterwards the folder is 0700, every file 0600,
 * the database files hold neither secret (not even in free pages or the WAL), and the token still works.
 * No broker is involved beyond the control plane's own session (embedded).
 */
const mode = (p: string): number => statSync(p).mode & 0o777;
const everyFile = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
const options = (dataDir: string, log = silentLogger): ControlPlaneOptions => ({ dataDir, httpHost: '127.0.0.1', httpPort: 0, broker: { kind: 'embedded', host: '127.0.0.1', port: 0 }, presenceTimeoutMs: 60_000, log });

describe('secrets on disk', () => {
  test('a fresh data folder: 0700, files 0600, token only as a hash, signing key in its own 0600 file', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'ef-secrets-')), 'data');
    const cp = await startControlPlane(options(dataDir));
    try {
      const token = cp.ctx.operatorToken;
      assert.equal(readFileSync(join(dataDir, OPERATOR_TOKEN_FILE), 'utf8').trim(), token);
      assert.equal(mode(dataDir), 0o700);
      for (const f of everyFile(dataDir)) assert.equal(mode(f), 0o600, f);
      assert.ok(readdirSync(dataDir).includes('edgefleet.db-wal'), 'WAL exists and was checked');
      const res = await fetch(`${cp.httpUrl}/devices`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      const pem = readFileSync(join(dataDir, SIGNING_KEY_FILE), 'utf8');
      assert.match(pem, /BEGIN PRIVATE KEY/);
      assert.equal(cp.ctx.signingKeys.privateKeyPem, pem);
      await cp.stop();
      const bytes = Buffer.concat(readdirSync(dataDir).filter((n) => n.startsWith('edgefleet.db')).map((n) => readFileSync(join(dataDir, n))));
      assert.equal(bytes.includes(Buffer.from(token)), false, 'the database files do not hold the operator token');
      assert.equal(bytes.includes(Buffer.from('PRIVATE KEY')), false, 'the database files do not hold a private key');
      // a restart reads the same token and key
      const again = await startControlPlane(options(dataDir));
      assert.equal(again.ctx.operatorToken, token);
      assert.equal(again.ctx.signingKeys.privateKeyPem, pem);
      await again.stop();
    } finally {
      await cp.stop().catch(() => {});
    }
  });

  test('an old world-readable data folder with secrets in the db is fixed, logged and scrubbed', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'ef-secrets-old-')), 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    // the state the issue found: a 0644 database holding both secrets in clear (settings rows of the old code)
    const oldToken = `efo_${'t'.repeat(32)}`;
    const keys = generateSigningKeyPair();
    const dbPath = join(dataDir, 'edgefleet.db');
    const old = openDatabase(dbPath);
    old.prepare('INSERT INTO settings (key, value) VALUES (?, ?), (?, ?)').run('operator-token', oldToken, 'model-signing-key', JSON.stringify(keys));
    old.close();
    writeFileSync(join(dataDir, 'endpoints.json'), '{}', { mode: 0o644 });
    chmodSync(dbPath, 0o644);
    chmodSync(join(dataDir, 'endpoints.json'), 0o644);
    mkdirSync(join(dataDir, 'registry'), { mode: 0o755 });
    writeFileSync(join(dataDir, 'registry', 'artifact.onnx'), 'x', { mode: 0o644 });
    chmodSync(join(dataDir, 'registry'), 0o755);
    chmodSync(join(dataDir, 'registry', 'artifact.onnx'), 0o644);

    const lines: Record<string, unknown>[] = [];
    const cp = await startControlPlane({ ...options(dataDir, createLogger({ level: 'info', sink: (l) => lines.push(JSON.parse(l)) })), dbPath });
    try {
      assert.ok(lines.some((l) => l['msg'] === 'data folder was readable by other users; fixed to 0700 (files 0600)'), 'the fix is logged');
      assert.ok(lines.some((l) => /operator token moved out of the database/.test(String(l['msg']))));
      assert.ok(lines.some((l) => /private key moved out of the database/.test(String(l['msg']))));
      assert.equal(mode(dataDir), 0o700);
      assert.equal(mode(join(dataDir, 'registry')), 0o700);
      for (const f of everyFile(dataDir)) assert.equal(mode(f), 0o600, f);
      // the old token keeps working (the operator's scripts) and the old key still signs (devices pinned it)
      assert.equal(cp.ctx.operatorToken, oldToken);
      assert.equal(cp.ctx.signingKeys.publicKeyPem, keys.publicKeyPem);
      assert.equal((await fetch(`${cp.httpUrl}/devices`, { headers: { authorization: `Bearer ${oldToken}` } })).status, 200);
    } finally {
      await cp.stop();
    }
    const bytes = Buffer.concat(readdirSync(dataDir).filter((n) => n.startsWith('edgefleet.db')).map((n) => readFileSync(join(dataDir, n))));
    assert.equal(bytes.includes(Buffer.from(oldToken)), false, 'the old token is gone from the database files, free pages and WAL included');
    assert.equal(bytes.includes(Buffer.from(keys.privateKeyPem.split('\n')[1]!)), false, 'the private key is gone from the database files');
  });

  test('the agent state folder: made private at start, the credential and downloads 0600', async () => {
    const stateDir = join(mkdtempSync(join(tmpdir(), 'ef-agent-state-')), 'state');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    writeFileSync(join(stateDir, 'identity.json'), '{}', { mode: 0o644 });
    chmodSync(join(stateDir, 'identity.json'), 0o644);
    // no broker: the agent fails to enroll after securing its folder, which is what this test looks at
    const a = await startAgent({ brokerUrl: 'mqtt://127.0.0.1:1', stateDir, deviceId: 'dev-modes', enrollmentToken: 'abcdef.0123456789abcdef0123', facts: SIMULATED[0]!.facts }).catch((e: unknown) => e);
    if (a && typeof a === 'object' && 'stop' in a) await (a as { stop: () => Promise<void> }).stop();
    assert.equal(mode(stateDir), 0o700);
    for (const f of everyFile(stateDir)) assert.equal(mode(f), 0o600, f);
  });
});
