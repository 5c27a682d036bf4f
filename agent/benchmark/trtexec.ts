import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrtexecTimes, type TrtexecTimes } from './trtexec-times.ts';
import type { Result } from '../../shared/result.ts';

/** The summary trtexec prints after a run. Older TensorRT (8.4 and before) prints only percentile(99%); p90 is then null. */
export type TrtexecSummary = {
  version: string | null;
  throughputQps: number;
  latencyMs: { min: number; max: number; mean: number; median: number; p90: number | null; p95: number | null; p99: number | null };
  gpuComputeMeanMs: number | null;
  queries: number | null;
  walltimeSeconds: number | null;
};

const num = (s: string | undefined): number | null => (s === undefined ? null : Number.isFinite(Number(s)) ? Number(s) : null);

function statsLine(text: string, label: string): Record<string, number> | null {
  // anchored after the log prefix, so "Latency" does not match "H2D Latency" or "End-to-End Host Latency"
  const re = new RegExp(`(?:^|\\]\\s|^\\s*)${label}: (min = .*)$`, 'm');
  const m = re.exec(text);
  if (!m?.[1]) return null;
  const out: Record<string, number> = {};
  for (const part of m[1].split(',')) {
    const kv = /^\s*(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([\d.eE+-]+)\s*ms\s*$/.exec(part);
    if (!kv) continue;
    const key = kv[2] ? `p${kv[2]}` : (kv[1] as string);
    const v = num(kv[3]);
    if (v !== null) out[key] = v;
  }
  return out;
}

export type ParseTrtexecResult = Result<TrtexecSummary>;

export function parseTrtexecOutput(text: string): ParseTrtexecResult {
  const lat = statsLine(text, 'Latency');
  const qps = /Throughput: ([\d.eE+-]+) qps/.exec(text);
  if (!lat || lat['min'] === undefined || lat['max'] === undefined || lat['mean'] === undefined || lat['median'] === undefined || !qps) {
    const failed = /&&&& FAILED[^\n]*/.exec(text)?.[0];
    return { ok: false, error: failed ? `trtexec failed: ${failed}` : 'no "Throughput:" / "Latency: min = ..." summary in trtexec output' };
  }
  const gpu = statsLine(text, 'GPU Compute Time');
  const version = /\[TensorRT v(\d+)\]/.exec(text)?.[1] ?? null;
  const trace = /Timing trace has (\d+) queries over ([\d.]+) s/.exec(text);
  const wall = /Total Host Walltime: ([\d.]+) s/.exec(text);
  return {
    ok: true,
    value: {
      version,
      throughputQps: Number(qps[1]),
      latencyMs: {
        min: lat['min'],
        max: lat['max'],
        mean: lat['mean'],
        median: lat['median'],
        p90: lat['p90'] ?? null,
        p95: lat['p95'] ?? null,
        p99: lat['p99'] ?? null,
      },
      gpuComputeMeanMs: gpu?.['mean'] ?? null,
      queries: trace ? Number(trace[1]) : null,
      walltimeSeconds: wall ? Number(wall[1]) : trace ? Number(trace[2]) : null,
    },
  };
}

/**
 * `times`: the per-query trace from --exportTimes, the source of the reported percentiles; null (with
 * `timesError` saying why) when TensorRT wrote none or an unreadable one, and the printed summary is used.
 */
export type TrtexecRun = { summary: TrtexecSummary; times: TrtexecTimes | null; timesError: string | null; peakRssBytes: number; output: string };

/**
 * Builds the engine on the device and times it: `trtexec --onnx=<model> <args> --warmUp --duration --iterations`.
 * Peak RSS is read from /proc/<pid>/status (VmHWM) while it runs; 0 where /proc is absent.
 */
export async function runTrtexec(opts: {
  trtexecPath: string;
  modelPath: string;
  extraArgs: readonly string[];
  warmupMs: number;
  durationSeconds: number;
  iterations: number;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<TrtexecRun> {
  const dir = mkdtempSync(join(tmpdir(), 'edgefleet-trtexec-'));
  const timesFile = join(dir, 'times.json');
  const args = [
    `--onnx=${opts.modelPath}`,
    `--exportTimes=${timesFile}`,
    ...opts.extraArgs,
    `--warmUp=${Math.round(opts.warmupMs)}`,
    `--duration=${Math.max(1, Math.ceil(opts.durationSeconds))}`,
    `--iterations=${Math.max(1, opts.iterations)}`,
    // no --percentile: TensorRT 8.6+ prints 90/95/99 by default, older versions accept only one value
  ];
  const child = spawn(opts.trtexecPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let peakKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      /* exited or no /proc */
    }
  }, 200);
  const kill = (): void => void child.kill('SIGKILL');
  const timer = setTimeout(kill, opts.timeoutMs);
  opts.signal?.addEventListener('abort', kill, { once: true });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).finally(() => {
    clearInterval(poll);
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', kill);
  });
  let timesText: string | null = null;
  try {
    timesText = readFileSync(timesFile, 'utf8');
  } catch {
    timesText = null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const parsed = parseTrtexecOutput(output);
  if (code !== 0 || !parsed.ok) {
    const tail = output.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`trtexec exited with code ${code}: ${parsed.ok ? '' : parsed.error}; last lines: ${tail}`.slice(0, 900));
  }
  const times = timesText === null ? { ok: false as const, error: 'trtexec wrote no --exportTimes file' } : parseTrtexecTimes(timesText, opts.warmupMs);
  return { summary: parsed.value, times: times.ok ? times.value : null, timesError: times.ok ? null : times.error, peakRssBytes: peakKb * 1024, output };
}
