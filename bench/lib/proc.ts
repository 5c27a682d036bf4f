/** What /proc says of another process, for the benches (Linux; 0 or null where the process is gone). */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat (100 on Linux). */
const CLK_TCK = 100;

export function procRss(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds so far: utime and stime, fields 14 and 15 of /proc/<pid>/stat (after the parenthesised command name). */
export function procCpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The first process whose command line contains `cmdPart`. */
export function findPid(cmdPart: string): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(cmdPart)) return Number(d);
    } catch {
      // gone
    }
  }
  return null;
}
