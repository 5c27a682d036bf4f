import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DeviceFacts } from '../shared/facts.ts';
import { BirthSchema, HeartbeatSchema, ReportSchema, StatusSchema } from '../shared/messages.ts';
import { startAgent, type AgentOptions } from './agent.ts';
import { EnrollmentError } from './enroll.ts';
import { FakeControlPlane } from './test-support/fake-control-plane.ts';
import { UNSUPPORTED_REASON } from './commands.ts';

const FACTS: DeviceFacts = {
  hostname: 'test',
  platform: 'linux',
  arch: 'x64',
  os: { distro: '', release: '', kernel: '' },
  cpu: { manufacturer: 'x', brand: 'y', cores: 2, physicalCores: 2, flags: ['avx2'] },
  memoryBytes: 1 << 30,
  gpus: [],
  deviceTreeModel: null,
  tegraRelease: null,
  hasTrtexec: false,
};

const health = async () => ({ load1: 0.1, cpuPercent: 5, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null });

describe('device session against an embedded broker', () => {
  const cp = new FakeControlPlane();
  const dirs: string[] = [];
  const stateDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ef-agent-'));
    dirs.push(d);
    return d;
  };
  const opts = (extra: Partial<AgentOptions> & { stateDir: string }): AgentOptions => ({
    brokerUrl: cp.brokerUrl,
    enrollmentToken: cp.token,
    facts: FACTS,
    heartbeatIntervalMs: 300,
    healthSampler: health,
    backoff: { initialMs: 100, maxMs: 400 },
    enrollment: { responseTimeoutMs: 500, requestAttempts: 2, connectDeadlineMs: 1000 },
    ...extra,
  });

  before(() => cp.start());
  after(async () => {
    await cp.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('enrolls, births, heartbeats, handles commands, stops gracefully and restarts without enrolling', async () => {
    const dir = stateDir();
    const a = await startAgent(opts({ stateDir: dir, deviceId: 'dev-session-1', profileHint: 'x86-64-vnni' }));
    assert.equal(a.enrolledNow, true);
    assert.equal(a.signingPublicKey, cp.keys.publicKeyPem);
    assert.equal(statSync(join(dir, 'identity.json')).mode & 0o777, 0o600);
    await a.waitFor('connected');
    await cp.waitFor(() => cp.messages(a.deviceId, 'heartbeat').length >= 2, 3000, 'two heartbeats');

    const status = cp.messages(a.deviceId, 'status');
    assert.equal(StatusSchema.parse(status[0]?.json).state, 'online');
    assert.equal(status[0]?.retain, true);
    const birth = BirthSchema.parse(cp.messages(a.deviceId, 'birth')[0]?.json);
    assert.equal(birth.profileHint, 'x86-64-vnni');
    assert.equal(birth.seq, 0);
    assert.deepEqual(birth.facts, FACTS);
    HeartbeatSchema.parse(cp.messages(a.deviceId, 'heartbeat')[0]?.json);

    cp.sendCommand(a.deviceId, { cmd: 'rebirth' });
    await cp.waitFor(() => cp.messages(a.deviceId, 'birth').length === 2, 3000, 'rebirth');

    cp.sendCommand(a.deviceId, 'not json');
    cp.sendCommand(a.deviceId, { cmd: 'explode' });
    await cp.waitFor(() => a.counters.commandsInvalid === 2, 3000, 'invalid commands counted');

    const dup = JSON.stringify({ v: 1, msgId: 'same-id-0001', ts: Date.now(), cmd: 'benchmark', model: { modelId: 'm', version: 3 } });
    cp.sendCommand(a.deviceId, dup);
    cp.sendCommand(a.deviceId, dup);
    await cp.waitFor(() => a.counters.commandsDuplicate === 1 && cp.messages(a.deviceId, 'report').length === 1, 3000, 'dedup + report');
    const report = ReportSchema.parse(cp.messages(a.deviceId, 'report')[0]?.json);
    assert.equal(report.kind, 'install-state');
    assert.ok(report.kind === 'install-state' && report.state === 'failed' && report.reason === UNSUPPORTED_REASON);

    await a.stop({ graceful: true });
    const last = cp.messages(a.deviceId, 'status').at(-1);
    assert.equal(StatusSchema.parse(last?.json).state, 'offline');
    assert.deepEqual(cp.denied, []);

    const b = await startAgent(opts({ stateDir: dir, enrollmentToken: null, brokerUrl: undefined }));
    assert.equal(b.deviceId, 'dev-session-1');
    assert.equal(b.enrolledNow, false);
    await b.waitFor('connected');
    await b.stop();
  });

  test('a killed agent leaves its will; a restarted broker is reconnected with the next seq', async () => {
    const a = await startAgent(opts({ stateDir: stateDir() }));
    assert.match(a.deviceId, /^dev-[0-9a-f]{12}$/);
    await a.waitFor('connected');
    const down = a.waitFor('disconnected');
    await cp.stop();
    await down;
    await cp.start(cp.port);
    const again = await a.waitFor('connected', 5000);
    assert.equal(again.seq, 1);
    assert.equal(BirthSchema.parse(cp.messages(a.deviceId, 'birth').at(-1)?.json).seq, 1);
    const before = cp.messages(a.deviceId, 'status').length;
    await a.stop({ graceful: false });
    await cp.waitFor(() => cp.messages(a.deviceId, 'status').length > before, 3000, 'will');
    const will = cp.messages(a.deviceId, 'status').at(-1);
    assert.equal(StatusSchema.parse(will?.json).state, 'offline');
    assert.equal(will?.retain, true);
  });

  test('a rejected token and a refused enrollment are clear errors', async () => {
    await assert.rejects(startAgent(opts({ stateDir: stateDir(), enrollmentToken: 'tok123abc.wrongwrongwrongwrong' })), (e: unknown) => {
      assert.ok(e instanceof EnrollmentError);
      assert.equal(e.kind, 'token-rejected');
      assert.match(e.message, /tok123abc/);
      return true;
    });
    cp.enrollMode = 'reject';
    try {
      await assert.rejects(startAgent(opts({ stateDir: stateDir() })), (e: unknown) => e instanceof EnrollmentError && e.kind === 'enrollment-rejected' && /token used up/.test(e.message));
      cp.enrollMode = 'silent';
      await assert.rejects(startAgent(opts({ stateDir: stateDir() })), (e: unknown) => e instanceof EnrollmentError && e.kind === 'timeout');
    } finally {
      cp.enrollMode = 'accept';
    }
  });
});
