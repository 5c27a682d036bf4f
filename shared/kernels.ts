/**
 * Which int8 kernels onnxruntime's MLAS picks on a CPU, and what that means for a quantization recipe.
 * Pure: callers pass the CPU architecture (`process.arch` style) and its /proc/cpuinfo flags.
 *
 * The one arithmetic hazard: x86 CPUs with AVX2 (or AVX-512BW) but no VNNI compute u8×s8 products with
 * `vpmaddubsw`, which adds each adjacent pair of products into int16 with saturation. A uint8 activation
 * (up to 255) times a full 8-bit weight (up to ±128) gives pair sums up to 65280: beyond int16, so such a
 * CPU does not compute what PyTorch computed. 7-bit weights (reduce_range: |w| ≤ 64) keep every pair
 * sum ≤ 32640. VNNI (`vpdpbusd`), ARM's dot product and NEON paths, and plain SSE accumulate in int32.
 * int8 (s8) activations do not help: onnxruntime's x86 build shifts them to u8 (+128) before the GEMM.
 *
 * onnxruntime has its own remedy, off by default: the session config entry `session.x64quantprecision`
 * = "1" rewrites int8 weights outside ±64 to uint8 (zero point 128) so the U8U8 kernels run, which widen
 * to int16 before multiplying and never saturate; weights within ±64 keep the fast U8S8 path. It only
 * acts where MLAS's U8U8 and U8S8 dispatch differ, which is every AVX2 x86 CPU, VNNI ones included, so
 * it must be set only where the hazard exists: on a VNNI CPU it would swap VNNI for the slower U8U8 path.
 */

export type KernelClass = 'x86-u8s8-int16' | 'int32-accumulate';

const VNNI_FLAGS = ['avx512_vnni', 'avx512vnni', 'avx_vnni', 'amx_int8'];

/** x86 whose MLAS U8S8 GEMM saturates pair sums into int16: AVX2 or AVX-512BW without any VNNI. */
export function u8s8Saturates(arch: string, flags: readonly string[]): boolean {
  if (arch !== 'x64' && arch !== 'ia32') return false;
  const f = new Set(flags.map((x) => x.toLowerCase()));
  if (VNNI_FLAGS.some((v) => f.has(v))) return false;
  return f.has('avx2') || f.has('avx512bw');
}

export function kernelClass(arch: string, flags: readonly string[]): KernelClass {
  return u8s8Saturates(arch, flags) ? 'x86-u8s8-int16' : 'int32-accumulate';
}

/** The ISA flags out of a /proc/cpuinfo text (x86 `flags`, ARM `Features`), lower-case. */
export function cpuinfoFlags(text: string): string[] {
  const flags = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^(flags|features)\s*:\s*(.*)$/i.exec(line);
    if (!m || !m[2]) continue;
    for (const f of m[2].trim().split(/\s+/)) if (f) flags.add(f.toLowerCase());
  }
  return [...flags];
}

/** Largest |weight| for which no u8×s8 pair sum leaves int16: 2 × 255 × 64 = 32640 ≤ 32767. */
export const SATURATION_FREE_WEIGHT_MAX = 64;

/**
 * Null when a recipe was built for kernels like this CPU's; otherwise the warning an operator gets when the
 * recipe is sent there anyway. At EdgeFleet's session settings (shared/ort-session.ts) the model still
 * computes what PyTorch computed, because a saturating CPU runs full 8-bit weights on onnxruntime's U8U8
 * path; that path is slower, and the reduce_range recipe (generic-cpu) is the one made for such a CPU.
 */
export function recipeKernelWarning(recipe: { id: string; reduceRange: boolean }, arch: string, flags: readonly string[], cpuLabel = 'this CPU'): string | null {
  if (!u8s8Saturates(arch, flags) || recipe.reduceRange) return null;
  return (
    `recipe ${recipe.id} has full 8-bit weights (reduceRange false), built for CPUs that accumulate u8×s8 in int32 (VNNI, ARM dot product); ` +
    `${cpuLabel} has AVX2 without VNNI, whose u8×s8 kernels saturate pair sums into int16. It runs there on onnxruntime's slower U8U8 kernels ` +
    `(session.x64quantprecision) so that it computes what PyTorch computed; a reduceRange recipe (generic-cpu) is the one built for this CPU`
  );
}
