/**
 * Kernel bench: the trainer's export pipeline on torchvision resnet18 and mobilenet_v2 at 224x224
 * (random init, calibrated on random data); fp32 vs int8 per CPU recipe, batch-1 p50 on 1 and 2
 * threads in onnxruntime-node, file sizes, and which kernels the optimized graph runs.
 *
 *   node --import tsx bench/kernel-bench.ts     # a few minutes on 2 cores
 */
import { execFileSync } from 'node:child_process';
import type * as ort from 'onnxruntime-node';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_RECIPES } from './lib/recipes.ts';
import { latency, openSession } from './lib/ort-measure.ts';
import { fmtBytes, fmtMs, formatTable } from './lib/table.ts';

const PYTHON = process.env['EDGEFLEET_PYTHON'] ?? '/usr/bin/python3';
const outDir = resolve(process.env['BENCH_OUT'] ?? '.edgefleet/bench/kernel');
const seconds = Number(process.env['BENCH_SECONDS'] ?? '3');
mkdirSync(outDir, { recursive: true });

const cpuRecipes = BENCH_RECIPES.filter((r) => r.id !== 'jetson-trt-int8' && r.id !== 'iphone-class-cpu');
const x86 = BENCH_RECIPES.find((r) => r.id === 'x86-64-vnni')!;
const variants = [
  ...cpuRecipes.map((r) => ({ label: r.id, recipe: r })),
  // what a plain export leaves in float: residual Add, global pooling and the classifier
  { label: 'x86-plain', recipe: { ...x86, id: 'x86-plain', floatOps: ['Add', 'GlobalAveragePool', 'Gemm'] } },
  // for reference: the Jetson recipe (symmetric int8 activations) on this x86 CPU
  { label: 'jetson-trt-int8', recipe: BENCH_RECIPES.find((r) => r.id === 'jetson-trt-int8')! },
];

type Entry = { arch: string; variant: string; file: string };

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function opsOf(path: string): Record<string, number> {
  const py = 'import json,sys,onnx\nm=onnx.load(sys.argv[1])\nc={}\nfor n in m.graph.node: c[n.op_type]=c.get(n.op_type,0)+1\nprint(json.dumps(c))';
  return JSON.parse(execFileSync(PYTHON, ['-c', py, path]).toString()) as Record<string, number>;
}

async function main(): Promise<void> {
  const script = fileURLToPath(new URL('./lib/kernel_export.py', import.meta.url));
  log('exporting resnet18 and mobilenet_v2 (fp32 + int8 per recipe)...');
  execFileSync(PYTHON, [script, '--out', outDir, '--recipes', JSON.stringify(variants)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const manifest = JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')) as Entry[];
  const shape = [1, 3, 224, 224];
  const rows: (string | number)[][] = [];
  const kernels: (string | number)[][] = [];
  for (const arch of [...new Set(manifest.map((m) => m.arch))]) {
    const entries = manifest.filter((m) => m.arch === arch);
    const fp32 = entries.find((e) => e.variant === 'fp32')!;
    const fp32Size = statSync(join(outDir, fp32.file)).size;
    const base: Record<number, number> = {};
    // int8 activations also as an ARM build of onnxruntime treats them (QDQ int8 fusion allowed)
    const arm = entries.find((e) => e.variant === 'armv82-dotprod');
    const runs = [...entries.map((e) => ({ ...e, extra: {} as ort.InferenceSession.SessionOptions })), ...(arm ? [{ ...arm, variant: 'armv82-dotprod +int8-allowed', extra: { extra: { session: { qdqisint8allowed: '1' } } } }] : [])];
    for (const e of runs) {
      const path = join(outDir, e.file);
      const p50: Record<number, number> = {};
      for (const threads of [1, 2]) {
        const optimized = threads === 1 && e.variant !== 'fp32' ? join(outDir, `${e.variant.replace(/[^a-z0-9-]/g, '_')}-${e.file.replace('.onnx', '.opt.onnx')}`) : undefined;
        const { session } = await openSession(path, threads, { ...e.extra, ...(optimized ? { optimizedModelFilePath: optimized } : {}) });
        p50[threads] = (await latency(session, shape, { warmup: 5, minQueries: 20, minSeconds: seconds })).p50;
        await session.release();
        if (optimized) {
          const ops = opsOf(optimized);
          const pick = (k: string) => ops[k] ?? 0;
          kernels.push([arch, e.variant, pick('QLinearConv'), pick('QGemm') + pick('MatMulInteger') + pick('QLinearMatMul'), pick('QLinearAdd'), pick('QLinearGlobalAveragePool'), pick('Conv') + pick('FusedConv'), pick('Gemm') + pick('FusedGemm'), pick('QuantizeLinear') + pick('DequantizeLinear')]);
        }
      }
      if (e.variant === 'fp32') Object.assign(base, p50);
      const size = statSync(path).size;
      rows.push([arch, e.variant, fmtBytes(size), `${(size / fp32Size).toFixed(3)}x`, fmtMs(p50[1]!), `${(base[1]! / p50[1]!).toFixed(2)}x`, fmtMs(p50[2]!), `${(base[2]! / p50[2]!).toFixed(2)}x`]);
      log(`${arch} ${e.variant}: p50 1t ${p50[1]!.toFixed(2)} ms, 2t ${p50[2]!.toFixed(2)} ms`);
    }
  }
  console.log(`\nKernel bench: torchvision models at 224x224, random init, onnxruntime-node, ${cpus().length}-core CPU (${cpus()[0]?.model ?? '?'})\n`);
  console.log(formatTable(['model', 'variant', 'file size', 'vs fp32', 'p50 1 thread (ms)', 'speed-up 1t', 'p50 2 threads (ms)', 'speed-up 2t'], rows));
  console.log('\nKernels in the onnxruntime-optimized graph (graphOptimizationLevel all):\n');
  console.log(formatTable(['model', 'variant', 'QLinearConv', 'QGemm/MatMulInt', 'QLinearAdd', 'QLinearGAP', 'float Conv', 'float Gemm', 'Q/DQ left'], kernels));
  console.log('\nGoals: resnet18 >= 3.5x, mobilenet_v2 >= 1.7x (x86-64-vnni, 1 thread), int8 files <= 0.3x fp32.');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
