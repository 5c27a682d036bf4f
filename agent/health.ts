import { cpus, freemem, loadavg, totalmem } from 'node:os';
import si from 'systeminformation';

export type HealthSample = {
  load1: number;
  cpuPercent: number | null;
  memUsedBytes: number;
  memTotalBytes: number;
  temperatureC: number | null;
};

type CpuTimes = { idle: number; total: number };

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const c of cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
  }
  return { idle, total };
}

/** Busy share between two readings of the cpu counters; null before there is a second reading. */
export function cpuPercentBetween(a: CpuTimes, b: CpuTimes): number | null {
  const total = b.total - a.total;
  if (total <= 0) return null;
  return Math.min(100, Math.max(0, (100 * (total - (b.idle - a.idle))) / total));
}

/**
 * Samples machine health. One sampler per process is shared by every in-process agent: the temperature read may
 * shell out (lm-sensors), so it is cached for `temperatureTtlMs`.
 */
export function createHealthSampler(temperatureTtlMs = 30_000): () => Promise<HealthSample> {
  let last = cpuTimes();
  let lastPercent: number | null = null;
  let lastCpuAt = 0;
  let temp: { at: number; value: number | null; pending: Promise<number | null> | null } = { at: -Infinity, value: null, pending: null };

  const temperature = async (): Promise<number | null> => {
    if (Date.now() - temp.at < temperatureTtlMs) return temp.value;
    temp.pending ??= si
      .cpuTemperature()
      .then((t) => {
        const v = typeof t.main === 'number' && Number.isFinite(t.main) && t.main > -100 && t.main < 250 ? t.main : null;
        return v;
      })
      .catch(() => null)
      .then((v) => {
        temp = { at: Date.now(), value: v, pending: null };
        return v;
      });
    return temp.pending;
  };

  return async () => {
    const now = Date.now();
    // many agents sampling in the same instant would each see a zero delta: reuse the reading for 250 ms
    if (now - lastCpuAt >= 250) {
      const cur = cpuTimes();
      lastPercent = cpuPercentBetween(last, cur) ?? lastPercent;
      last = cur;
      lastCpuAt = now;
    }
    const total = totalmem();
    return {
      load1: Math.max(0, loadavg()[0] ?? 0),
      cpuPercent: lastPercent,
      memUsedBytes: Math.max(0, total - freemem()),
      memTotalBytes: total,
      temperatureC: await temperature(),
    };
  };
}

let shared: (() => Promise<HealthSample>) | null = null;
export function sharedHealthSampler(): () => Promise<HealthSample> {
  shared ??= createHealthSampler();
  return shared;
}
