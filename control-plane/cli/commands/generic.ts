import type { Column } from '../format.ts';

/** Columns for rows whose shape the CLI does not know yet (areas still being built): every scalar key, in first-seen order. */
export function genericColumns(rows: readonly Record<string, unknown>[], max = 10): Column<Record<string, unknown>>[] {
  const keys: string[] = [];
  for (const r of rows) for (const [k, v] of Object.entries(r)) if ((v === null || typeof v !== 'object' || isFlatObject(v)) && !keys.includes(k)) keys.push(k);
  return keys.slice(0, max).map((k) => ({ header: k, value: (r) => r[k] }));
}

function isFlatObject(v: unknown): boolean {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x !== 'object') && Object.keys(v).length <= 4;
}

/** Every column for CSV: flattened keys, nested objects as JSON. */
export function csvColumns(rows: readonly Record<string, unknown>[]): Column<Record<string, unknown>>[] {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return keys.map((k) => ({ header: k, value: (r) => (r[k] !== null && typeof r[k] === 'object' ? JSON.stringify(r[k]) : r[k]) }));
}
