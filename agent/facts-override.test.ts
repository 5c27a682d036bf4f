import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import type { DeviceFacts } from '../shared/facts.ts';
import { matchProfile } from '../shared/matcher.ts';
import { applyFactsOverride, deepMerge, loadFactsOverrideFile } from './facts-override.ts';

const X86: DeviceFacts = {
  hostname: 'box',
  platform: 'linux',
  arch: 'x64',
  os: { distro: 'Debian', release: '12', kernel: '6.1' },
  cpu: { manufacturer: 'AMD', brand: 'EPYC', cores: 8, physicalCores: 4, flags: ['sse2', 'avx2', 'avx512_vnni'] },
  memoryBytes: 16e9,
  gpus: [],
  deviceTreeModel: null,
  tegraRelease: null,
  hasTrtexec: false,
};

const profiles = (() => {
  const r = loadProfilesFromDir();
  assert.ok(r.ok);
  return r.value;
})();

test('deep merge: objects merge key by key, arrays and scalars replace', () => {
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: null }), { a: { b: 1, c: [3] }, d: 1, e: null });
});

test('an x86 box poses as a Raspberry Pi 5 and as a Jetson', () => {
  const pi = applyFactsOverride(X86, { arch: 'arm64', cpu: { flags: ['fp', 'asimd', 'ASIMDDP'], cores: 4 }, deviceTreeModel: 'Raspberry Pi 5 Model B Rev 1.0' }, 'pi5.json');
  assert.ok(pi.ok);
  assert.equal(pi.value.cpu.brand, 'EPYC', 'untouched fields survive');
  assert.deepEqual(pi.value.cpu.flags, ['fp', 'asimd', 'asimddp']);
  assert.equal(matchProfile(pi.value, profiles)?.profileId, 'armv82-dotprod');

  const jetson = applyFactsOverride(X86, { arch: 'arm64', tegraRelease: '# R36 (release), REVISION: 3.0', hasTrtexec: true, cpu: { flags: ['asimddp'] } }, 'jetson.json');
  assert.ok(jetson.ok);
  assert.equal(matchProfile(jetson.value, profiles)?.profileId, 'jetson-trt-int8');
  assert.equal(matchProfile(X86, profiles)?.profileId, 'x86-64-vnni');
});

test('a bad override names the source and the field', () => {
  const wrongType = applyFactsOverride(X86, { cpu: { cores: 'four' } }, 'pi5.json');
  assert.ok(!wrongType.ok);
  assert.match(wrongType.error, /^pi5\.json: cpu\.cores: /);

  const typo = applyFactsOverride(X86, { cpu: { flag: ['asimddp'] } }, 'pi5.json');
  assert.ok(!typo.ok);
  assert.match(typo.error, /^pi5\.json: cpu\.flag: unknown facts field/);

  const notObject = applyFactsOverride(X86, ['arm64'], 'x.json');
  assert.ok(!notObject.ok);
  assert.match(notObject.error, /x\.json: \(root\)/);
});

test('override files: unreadable, not JSON, not an object', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-facts-'));
  try {
    const missing = loadFactsOverrideFile(join(dir, 'missing.json'));
    assert.ok(!missing.ok && missing.error.includes('missing.json') && missing.error.includes('ENOENT'));
    writeFileSync(join(dir, 'bad.json'), '{ arch: arm64 }');
    const bad = loadFactsOverrideFile(join(dir, 'bad.json'));
    assert.ok(!bad.ok && /bad\.json: not valid JSON/.test(bad.error));
    writeFileSync(join(dir, 'arr.json'), '[]');
    assert.equal(loadFactsOverrideFile(join(dir, 'arr.json')).ok, false);
    writeFileSync(join(dir, 'ok.json'), '{"arch":"arm64"}');
    assert.deepEqual(loadFactsOverrideFile(join(dir, 'ok.json')), { ok: true, value: { arch: 'arm64' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
