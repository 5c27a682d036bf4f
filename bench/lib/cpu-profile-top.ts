/** Top functions by self time in a V8 .cpuprofile (what `node --cpu-prof` writes). */
import { readFileSync } from 'node:fs';

type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };

export function busySeconds(path: string): number {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile & { timeDeltas: number[] };
  const idle = new Set(p.nodes.filter((x) => x.callFrame.functionName === '(idle)').map((x) => x.id));
  let us = 0;
  p.samples.forEach((s, i) => {
    if (!idle.has(s)) us += p.timeDeltas[i + 1] ?? 0;
  });
  return us / 1e6;
}

export function topFunctions(path: string, n = 15): { name: string; where: string; selfPct: number }[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const hits = new Map<number, number>();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  // shares of the busy time: an idle control plane waiting for traffic says nothing about its hot spots
  const idleIds = new Set(p.nodes.filter((x) => x.callFrame.functionName === '(idle)').map((x) => x.id));
  const total = p.samples.filter((s) => !idleIds.has(s)).length || 1;
  const by = new Map<string, { name: string; where: string; hits: number }>();
  for (const node of p.nodes) {
    const h = hits.get(node.id) ?? 0;
    if (!h || idleIds.has(node.id)) continue;
    const f = node.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '').replace(/.*\/(control-plane|shared|agent)\//, '$1/');
    // tsx compiles TypeScript without keeping line numbers: name the file, and the line only for plain JavaScript
    const where = file ? (file.endsWith('.ts') ? file : `${file}:${f.lineNumber + 1}`) : '';
    const key = `${f.functionName}@${where}`;
    const e = by.get(key) ?? { name: f.functionName || '(anonymous)', where, hits: 0 };
    e.hits += h;
    by.set(key, e);
  }
  return [...by.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, n)
    .map((e) => ({ name: e.name, where: e.where, selfPct: (100 * e.hits) / total }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of process.argv.slice(2)) {
    console.log(`\n${f}`);
    for (const t of topFunctions(f, 20)) console.log(`${t.selfPct.toFixed(1).padStart(5)}%  ${t.name}  ${t.where}`);
  }
}
