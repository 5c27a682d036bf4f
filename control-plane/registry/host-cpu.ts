import { readFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { parseCpuinfoFlags } from '../../agent/probe.ts';
import type { HostCpu } from '../../shared/registry.ts';

/**
 * The ISA features that decide which integer kernels onnxruntime's MLAS picks, and so whether an
 * int8 model computes what PyTorch computed: AVX2 without VNNI sums u8×s8 pairs into int16 with
 * saturation (vpmaddubsw), VNNI and ARM's dot product accumulate in int32.
 */
export const KERNEL_ISA_FLAGS = ['sse4_1', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512vnni', 'avx_vnni', 'amx_int8', 'asimd', 'asimddp', 'i8mm', 'sve'] as const;

/** Model name and kernel-relevant flags from a /proc/cpuinfo text (x86 `model name`, ARM `CPU part`/`Hardware`). */
export function parseHostCpu(cpuinfo: string, fallbackModel: string, cpuArch: string): HostCpu {
  const field = (re: RegExp): string | null => re.exec(cpuinfo)?.[1]?.trim() || null;
  const model = field(/^model name\s*:\s*(.+)$/im) ?? field(/^Hardware\s*:\s*(.+)$/im) ?? (field(/^CPU part\s*:\s*(.+)$/im) ? `ARM CPU part ${field(/^CPU part\s*:\s*(.+)$/im)}` : null) ?? fallbackModel;
  const flags = new Set(parseCpuinfoFlags(cpuinfo));
  const isaFlags = KERNEL_ISA_FLAGS.filter((f) => flags.has(f));
  const vnni = isaFlags.some((f) => f === 'avx512_vnni' || f === 'avx512vnni' || f === 'avx_vnni');
  const summary = isaFlags.length ? isaFlags.join(' ') : 'no kernel-relevant ISA flags read';
  return { model, arch: cpuArch, isaFlags, label: `${model} (${summary}${cpuArch === 'x64' && !vnni ? ', no VNNI' : ''})` };
}

let cached: HostCpu | null = null;

/** This control-plane host's CPU, read once. */
export function hostCpu(): HostCpu {
  if (cached) return cached;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: os.cpus() still names the model; the ISA flags stay unknown and say so
  }
  cached = parseHostCpu(text, cpus()[0]?.model ?? 'unknown CPU', arch());
  return cached;
}
