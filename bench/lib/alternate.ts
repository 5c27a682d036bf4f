/**
 * Before/after measurements that alternate: each measurement runs in a process of its own (the bench script again
 * with `--measure <root> ...args`), this checkout's and BENCH_BEFORE's in turn, so the host's noise falls on both.
 */
import { fork } from 'node:child_process';

/** Runs `script --measure root ...args` and returns the JSON object on the last line it prints. */
export async function measureInChild<T>(script: string, root: string, args: string[]): Promise<T> {
  const p = fork(script, ['--measure', root, ...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  const line = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`measurement of ${root} (${args.join(' ')}) failed (exit ${code}): ${out.slice(-500)}`);
  return JSON.parse(line) as T;
}

/** The checkouts to measure: `[code, root]`, BENCH_BEFORE's first when given. */
export function checkouts(here: string, before: string | null): [string, string][] {
  return before ? [['before', before], ['this', here]] : [['this', here]];
}

/**
 * `repeat` rounds, each measuring every checkout once in turn (`args` the same for all); each result is printed to
 * stderr as it comes. Returns the results by code, in round order.
 */
export async function alternate<T extends object>(script: string, codes: [string, string][], repeat: number, args: string[], label: Record<string, unknown> = {}): Promise<Map<string, T[]>> {
  const by = new Map<string, T[]>();
  for (let k = 0; k < repeat; k++) {
    for (const [code, root] of codes) {
      const r = await measureInChild<T>(script, root, args);
      console.error(JSON.stringify({ ...label, code, run: k, ...r }));
      by.set(code, [...(by.get(code) ?? []), r]);
    }
  }
  return by;
}
