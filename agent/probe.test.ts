import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DeviceFactsSchema } from '../shared/facts.ts';
import { parseCpuinfoFlags, probeFacts, probeFactsCached } from './probe.ts';

test('probe returns schema-valid facts for this machine', async () => {
  const { facts } = await probeFacts();
  assert.deepEqual(DeviceFactsSchema.parse(facts), facts);
  assert.equal(facts.platform, process.platform);
  assert.equal(facts.arch, process.arch);
  assert.ok(facts.cpu.cores >= 1);
  assert.ok(facts.memoryBytes > 0);
  if (process.platform === 'linux' && process.arch === 'x64') assert.ok(facts.cpu.flags.includes('sse2'), 'x86-64 always has sse2');
  assert.ok(facts.cpu.flags.every((f) => f === f.toLowerCase()));
});

test('the cached probe is shared', async () => {
  assert.equal(probeFactsCached(), probeFactsCached());
  await probeFactsCached();
});

test('cpuinfo flags: x86 `flags` and ARM `Features` lines, lower-cased and de-duplicated', () => {
  const x86 = 'processor\t: 0\nflags\t\t: fpu SSE2 avx512_vnni\nprocessor\t: 1\nflags\t\t: fpu sse2 avx512_vnni\n';
  assert.deepEqual(parseCpuinfoFlags(x86), ['fpu', 'sse2', 'avx512_vnni']);
  const pi5 = 'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\n';
  assert.ok(parseCpuinfoFlags(pi5).includes('asimddp'));
  assert.deepEqual(parseCpuinfoFlags(''), []);
});

test('board files: device-tree model (NUL-terminated) and the first line of nv_tegra_release', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-probe-'));
  try {
    writeFileSync(join(dir, 'model'), 'NVIDIA Jetson Orin Nano Developer Kit\0');
    writeFileSync(join(dir, 'tegra'), '# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64\n# KERNEL_VARIANT: oot\n');
    const { facts } = await probeFacts({ cpuinfo: join(dir, 'nope'), deviceTreeModel: join(dir, 'model'), tegraRelease: join(dir, 'tegra'), trtexecFallback: join(dir, 'nope') });
    assert.equal(facts.deviceTreeModel, 'NVIDIA Jetson Orin Nano Developer Kit');
    assert.equal(facts.tegraRelease, '# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
