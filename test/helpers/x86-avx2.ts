import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, type Arm64RunResult } from './arm64.ts';

/**
 * Runs this host's x64 Node as an AVX2 CPU without VNNI (Intel Haswell), whatever this CPU is: qemu-user
 * (Debian qemu-user-static) emulates the instructions and answers cpuid as Haswell, so onnxruntime's MLAS
 * dispatches to its AVX2 kernels (vpmaddubsw, the saturating u8×s8 path). qemu-user shows the host's
 * /proc/cpuinfo, so the child gets its own mount namespace (`unshare -m`, needs root) with a Haswell one
 * bind-mounted over it: code that reads cpuinfo (agent/benchmark/host-kernels.ts) sees what MLAS sees.
 * Slow (about 3 s to start Node, then ~50x slower): correctness checks on small eval sets only.
 */
const QEMU = '/usr/bin/qemu-x86_64-static';
export const AVX2_CPU_MODEL = 'Haswell-v4';
export const HASWELL_CPUINFO = Array.from({ length: 2 }, (_, i) =>
  [
    `processor\t: ${i}`,
    'vendor_id\t: GenuineIntel',
    'model name\t: Intel Core Processor (Haswell, no TSX, IBRS)',
    'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm fsgsbase bmi1 avx2 smep bmi2 erms',
    '',
  ].join('\n'),
).join('\n');

export type Avx2Availability = { ok: true } | { ok: false; reason: string };
let cached: Avx2Availability | undefined;
let cpuinfoPath: string | undefined;

export function avx2EmulationAvailable(): Avx2Availability {
  if (cached) return cached;
  cached = probe();
  return cached;
}

function probe(): Avx2Availability {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { ok: false, reason: `AVX2 emulation runs the host's x64 Node (this is ${process.platform}/${process.arch})` };
  if (!existsSync(QEMU)) return { ok: false, reason: `${QEMU} missing: install Debian package qemu-user-static (scripts/install-system-deps.sh all)` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'a Haswell /proc/cpuinfo is bind-mounted in a private mount namespace, which needs root' };
  const r = spawnSync('unshare', line(['-e', 'process.stdout.write(require("node:fs").readFileSync("/proc/cpuinfo","utf8").includes(" avx2 ") ? "avx2" : "host")']), { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0 || r.stdout !== 'avx2') return { ok: false, reason: `node did not start under qemu -cpu ${AVX2_CPU_MODEL} with a Haswell cpuinfo (status ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').filter((l) => !l.includes('TCG doesn')).slice(-2).join(' ')}` };
  return { ok: true };
}

function line(nodeArgs: readonly string[]): string[] {
  if (!cpuinfoPath) {
    cpuinfoPath = join(mkdtempSync(join(tmpdir(), 'ef-avx2-cpuinfo-')), 'cpuinfo');
    writeFileSync(cpuinfoPath, HASWELL_CPUINFO);
  }
  const script = 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"';
  return ['-m', 'sh', '-c', script, 'sh', cpuinfoPath, QEMU, '-cpu', AVX2_CPU_MODEL, process.execPath, ...nodeArgs];
}

/** Runs `node <args>` (this host's Node binary) as a Haswell CPU to completion; qemu's TCG feature warnings are dropped from stderr. */
export async function runAvx2Node(args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Arm64RunResult> {
  if (!avx2EmulationAvailable().ok) throw new Error('AVX2 emulation unavailable');
  const r = await collect(spawn('unshare', line(args), { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }), opts.timeoutMs ?? 300_000);
  return { ...r, stderr: r.stderr.split('\n').filter((l) => !l.includes("TCG doesn't support")).join('\n') };
}
