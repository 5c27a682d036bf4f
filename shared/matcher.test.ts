import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import { DeviceFactsSchema, type DeviceFactsInput } from './facts.ts';
import { failedRules, matchProfile } from './matcher.ts';

const loaded = loadProfilesFromDir();
assert.ok(loaded.ok, 'built-in profiles load');
const profiles = loaded.value;

const facts = (f: DeviceFactsInput) => DeviceFactsSchema.parse(f);
const armFlags = 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp'.split(' ');

// Flags as /proc/cpuinfo shows them on each board.
const table: { name: string; facts: DeviceFactsInput; expect: string }[] = [
  {
    name: 'Raspberry Pi 5 (Cortex-A76)',
    facts: { platform: 'linux', arch: 'arm64', cpu: { brand: 'Cortex-A76', cores: 4, flags: armFlags }, memoryBytes: 8e9, deviceTreeModel: 'Raspberry Pi 5 Model B Rev 1.0' },
    expect: 'armv82-dotprod',
  },
  {
    name: 'RK3588 (Cortex-A76 + A55)',
    facts: { platform: 'linux', arch: 'arm64', cpu: { brand: 'Cortex-A55', cores: 8, flags: armFlags }, memoryBytes: 16e9, deviceTreeModel: 'Radxa ROCK 5B' },
    expect: 'armv82-dotprod',
  },
  {
    name: 'Jetson Orin Nano',
    facts: {
      platform: 'linux',
      arch: 'arm64',
      cpu: { brand: 'Cortex-A78AE', cores: 6, flags: [...armFlags, 'uscat', 'ilrcpc', 'flagm'] },
      memoryBytes: 8e9,
      deviceTreeModel: 'NVIDIA Jetson Orin Nano Developer Kit',
      tegraRelease: '# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64',
      hasTrtexec: true,
    },
    expect: 'jetson-trt-int8',
  },
  {
    name: 'M1 Mac',
    facts: { platform: 'darwin', arch: 'arm64', cpu: { brand: 'Apple M1', cores: 8, flags: [] }, memoryBytes: 16e9 },
    expect: 'iphone-class-cpu',
  },
  {
    name: 'AMD Zen 4 with AVX512-VNNI (the CI machine)',
    facts: { platform: 'linux', arch: 'x64', cpu: { brand: 'AMD EPYC', cores: 2, flags: ['sse4_2', 'avx2', 'avx512f', 'avx512_vnni'] }, memoryBytes: 24e9 },
    expect: 'x86-64-vnni',
  },
  {
    name: 'Alder Lake with AVX-VNNI only',
    facts: { platform: 'linux', arch: 'x64', cpu: { brand: 'Intel Core i5-12400', cores: 12, flags: ['avx2', 'avx_vnni'] }, memoryBytes: 32e9 },
    expect: 'x86-64-vnni',
  },
  {
    name: 'old x86 with AVX2 only (Haswell)',
    facts: { platform: 'linux', arch: 'x64', cpu: { brand: 'Intel Xeon E5-2680 v3', cores: 24, flags: ['sse4_2', 'avx', 'avx2', 'fma'] }, memoryBytes: 64e9 },
    expect: 'generic-cpu',
  },
  {
    name: 'Raspberry Pi 4 (Cortex-A72, no dotprod)',
    facts: { platform: 'linux', arch: 'arm64', cpu: { brand: 'Cortex-A72', cores: 4, flags: ['fp', 'asimd', 'crc32', 'cpuid'] }, memoryBytes: 4e9 },
    expect: 'generic-cpu',
  },
];

for (const row of table) {
  test(`matcher: ${row.name} -> ${row.expect}`, () => {
    assert.equal(matchProfile(facts(row.facts), profiles)?.profileId, row.expect);
  });
}

test('matcher: an operator override naming a known profile wins; an unknown one is ignored', () => {
  const pi = facts(table[0]!.facts);
  assert.deepEqual(matchProfile(pi, profiles, 'generic-cpu'), { profileId: 'generic-cpu', reason: 'override' });
  assert.equal(matchProfile(pi, profiles, 'no-such-profile')?.profileId, 'armv82-dotprod');
});

test('matcher: the fallback is reported as such', () => {
  assert.equal(matchProfile(facts(table[6]!.facts), profiles)?.reason, 'fallback');
});

test('matcher: failedRules names each rule that does not hold', () => {
  const x86 = facts(table[6]!.facts);
  assert.deepEqual(failedRules({ platform: ['darwin'], arch: ['arm64'], cpuFlagsAny: ['asimddp'] }, x86), ['platform', 'arch', 'cpuFlagsAny']);
  assert.deepEqual(failedRules({ jetson: true }, x86), ['jetson']);
});
