import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StatusSchema } from '../shared/messages.ts';
import { FakeControlPlane } from './test-support/fake-control-plane.ts';

const BIN = fileURLToPath(new URL('../bin/edgefleet-agent.mjs', import.meta.url));

type Run = { code: number | null; stdout: string; stderr: string };

function runCli(args: string[], env: Record<string, string>, onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, child);
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('edgefleet-agent CLI', () => {
  const cp = new FakeControlPlane();
  const dirs: string[] = [];
  const stateDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'ef-cli-'));
    dirs.push(d);
    return d;
  };
  before(() => cp.start());
  after(async () => {
    await cp.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('--help exits 0', async () => {
    const r = await runCli(['--help'], {});
    assert.equal(r.code, 0);
    assert.match(r.stdout, /EDGEFLEET_BROKER_URL/);
  });

  test('probe prints facts and the matched profile', async () => {
    const r = await runCli(['probe'], {});
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { facts: { arch: string }; profile: { profileId: string } };
    assert.equal(out.facts.arch, process.arch);
    assert.ok(out.profile.profileId);
  });

  test('enrolls from env vars, runs, and stops gracefully on SIGTERM; JSON log lines carry the device id', async () => {
    let signalled = false;
    const r = await runCli(
      [],
      {
        EDGEFLEET_BROKER_URL: cp.brokerUrl,
        EDGEFLEET_STATE_DIR: stateDir(),
        EDGEFLEET_ENROLLMENT_TOKEN: cp.token,
        EDGEFLEET_DEVICE_ID: 'cli-dev-1',
        EDGEFLEET_HEARTBEAT_SECONDS: '0.5',
      },
      (text, child) => {
        if (!signalled && text.includes('"msg":"connected"')) {
          signalled = true;
          setTimeout(() => child.kill('SIGTERM'), 200);
        }
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.every((l) => l['deviceId'] === 'cli-dev-1'), r.stderr);
    assert.equal(StatusSchema.parse(cp.messages('cli-dev-1', 'status').at(-1)?.json).state, 'offline');
  });

  test('a refused enrollment exits 2 with a clear message', async () => {
    cp.enrollMode = 'reject';
    try {
      const r = await runCli(['--broker-url', cp.brokerUrl, '--state-dir', stateDir(), '--enrollment-token', cp.token, '--device-id', 'cli-dev-2'], {});
      assert.equal(r.code, 2);
      assert.match(r.stderr, /refused enrollment of \\?"cli-dev-2\\?": token used up/);
    } finally {
      cp.enrollMode = 'accept';
    }
    const bad = await runCli(['--broker-url', cp.brokerUrl, '--state-dir', stateDir(), '--enrollment-token', 'tok123abc.nottherightsecret00'], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /rejected enrollment token \\?"tok123abc\\?"/);
  });

  test('usage errors exit 64', async () => {
    assert.equal((await runCli(['--heartbeat-seconds', 'soon'], {})).code, 64);
    assert.equal((await runCli(['--state-dir', stateDir()], { EDGEFLEET_ENROLLMENT_TOKEN: '' })).code, 64);
  });
});
