import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { cpuinfoFlags, u8s8Saturates } from '../../shared/kernels.ts';
import type { KernelFacts } from '../../shared/ort-session.ts';

/**
 * This machine's kernel facts for the onnxruntime session settings, from /proc/cpuinfo (what MLAS's own
 * cpuid dispatch sees on x86). Without a readable cpuinfo (macOS) nothing saturates: Apple silicon is
 * ARM, and x86 macOS is not a target.
 */
export function hostKernelFacts(cpuinfoPath = '/proc/cpuinfo'): KernelFacts {
  let text = '';
  try {
    text = readFileSync(cpuinfoPath, 'utf8');
  } catch {
    // no cpuinfo: see above
  }
  return { u8s8Saturates: u8s8Saturates(arch(), cpuinfoFlags(text)) };
}
