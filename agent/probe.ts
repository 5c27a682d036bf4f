import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import si from 'systeminformation';
import { DeviceFactsSchema, type DeviceFacts } from '../shared/facts.ts';
import { formatZodError } from '../shared/messages.ts';
import { cpuinfoFlags } from '../shared/kernels.ts';

/** Where the probe looks outside systeminformation; tests point these at fixture files. */
export type ProbePaths = {
  cpuinfo: string;
  deviceTreeModel: string;
  tegraRelease: string;
  trtexecFallback: string;
};

export const DEFAULT_PROBE_PATHS: ProbePaths = {
  cpuinfo: '/proc/cpuinfo',
  deviceTreeModel: '/proc/device-tree/model',
  tegraRelease: '/etc/nv_tegra_release',
  trtexecFallback: '/usr/src/tensorrt/bin/trtexec',
};

/** Lower-cased flags from the x86 `flags` and ARM `Features` lines of /proc/cpuinfo: the one parser, in shared/kernels.ts. */
export const parseCpuinfoFlags = cpuinfoFlags;

function readText(path: string): string | null {
  try {
    // device-tree strings end in NUL
    return readFileSync(path, 'utf8').replace(/\0/g, '').trim();
  } catch {
    return null;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** TensorRT's trtexec: on PATH, else where the JetPack packages install it; null when absent. */
export function findTrtexec(env: NodeJS.ProcessEnv = process.env, fallback = DEFAULT_PROBE_PATHS.trtexecFallback): string | null {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'trtexec'))) return join(dir, 'trtexec');
  }
  return isExecutable(fallback) ? fallback : null;
}

/** systeminformation calls shell out on some systems and fail in some containers: each is optional and bounded. */
async function guarded<T>(what: string, fn: () => Promise<T>, warnings: string[], timeoutMs = 5000): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
        timer.unref();
      }),
    ]);
  } catch (e) {
    warnings.push(`${what}: ${(e as Error).message}`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

export type ProbeResult = { facts: DeviceFacts; warnings: string[] };

/** Learns what this machine is. Never throws for a missing source; falls back to node's os module. */
export async function probeFacts(paths: ProbePaths = DEFAULT_PROBE_PATHS): Promise<ProbeResult> {
  const warnings: string[] = [];
  const [cpu, siFlags, mem, osInfo, graphics] = await Promise.all([
    guarded('systeminformation.cpu', () => si.cpu(), warnings),
    guarded('systeminformation.cpuFlags', () => si.cpuFlags(), warnings),
    guarded('systeminformation.mem', () => si.mem(), warnings),
    guarded('systeminformation.osInfo', () => si.osInfo(), warnings),
    guarded('systeminformation.graphics', () => si.graphics(), warnings),
  ]);
  const flags = new Set<string>(parseCpuinfoFlags(readText(paths.cpuinfo) ?? ''));
  for (const f of (siFlags ?? '').split(/\s+/)) if (f) flags.add(f.toLowerCase());

  const nodeCpus = cpus();
  const tegra = readText(paths.tegraRelease);
  const raw = {
    hostname: (osInfo?.hostname || hostname()).slice(0, 255),
    platform: process.platform,
    arch: process.arch,
    os: {
      distro: (osInfo?.distro ?? '').slice(0, 128),
      release: (osInfo?.release ?? '').slice(0, 64),
      kernel: (osInfo?.kernel ?? '').slice(0, 128),
    },
    cpu: {
      manufacturer: (cpu?.manufacturer ?? '').slice(0, 128),
      brand: (cpu?.brand || nodeCpus[0]?.model || '').slice(0, 256),
      cores: Math.max(1, cpu?.cores || nodeCpus.length || 1),
      physicalCores: cpu?.physicalCores ?? 0,
      flags: [...flags].filter((f) => f.length <= 64).slice(0, 1024),
    },
    memoryBytes: mem?.total ?? totalmem(),
    gpus: (graphics?.controllers ?? []).slice(0, 16).map((g) => ({ vendor: (g.vendor ?? '').slice(0, 128), model: (g.model ?? '').slice(0, 256) })),
    deviceTreeModel: readText(paths.deviceTreeModel)?.slice(0, 256) || null,
    tegraRelease: tegra ? (tegra.split('\n')[0] ?? '').slice(0, 256) || null : null,
    hasTrtexec: findTrtexec(process.env, paths.trtexecFallback) !== null,
  };
  const parsed = DeviceFactsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`probe produced invalid facts (${formatZodError(parsed.error)}); this is a bug in agent/probe.ts`);
  return { facts: parsed.data, warnings };
}

let cached: Promise<ProbeResult> | null = null;

/** One probe per process: fifty in-process test agents share it instead of probing fifty times. */
export function probeFactsCached(): Promise<ProbeResult> {
  cached ??= probeFacts().catch((e: unknown) => {
    cached = null;
    throw e;
  });
  return cached;
}
