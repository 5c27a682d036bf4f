import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** "2 x AMD EPYC ... (avx512_vnni)" from /proc/cpuinfo, falling back to os.cpus(). */
export function machineName(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU';
  let vnni = false;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? model;
    vnni = /^flags\s*:.*\b(avx512_vnni|avx_vnni)\b/m.test(info);
  } catch {
    // not Linux: os.cpus() is what there is
  }
  return `${cpus().length} x ${model}${vnni ? ' (VNNI)' : ''}, ${Math.round(totalMemGiB())} GiB`;
}

function totalMemGiB(): number {
  try {
    const kb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    return kb / 1024 / 1024;
  } catch {
    return 0;
  }
}
