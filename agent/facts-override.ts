import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DeviceFactsSchema, type DeviceFacts } from '../shared/facts.ts';
import type { Result } from '../shared/result.ts';

/**
 * A facts override is a partial facts object deep-merged over the probed facts: objects merge key by key,
 * arrays and scalars replace. This is how one x86 box poses as a Raspberry Pi 5 or a Jetson in tests.
 */
export type FactsOverride = Record<string, unknown>;
export type OverrideResult = Result<DeviceFacts>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
  return s;
}

/** DeviceFactsSchema strips unknown keys silently; an override with a typo (`cpu.flag`) must fail loudly instead. */
function unknownKeys(value: unknown, schema: z.ZodType, path: string[] = []): string[] {
  const s = unwrap(schema);
  if (!(s instanceof z.ZodObject) || !isPlainObject(value)) return [];
  const shape = s.shape as Record<string, z.ZodType>;
  return Object.entries(value).flatMap(([k, v]) => {
    const field = shape[k];
    return field ? unknownKeys(v, field, [...path, k]) : [[...path, k].join('.')];
  });
}

/** Merges `override` over `base`; errors name `source` and the field, e.g. `pi5.json: cpu.cores: Too small`. */
export function applyFactsOverride(base: DeviceFacts, override: unknown, source: string): OverrideResult {
  if (!isPlainObject(override)) return { ok: false, error: `${source}: (root): facts override must be a JSON object` };
  const unknown = unknownKeys(override, DeviceFactsSchema);
  if (unknown.length) {
    return { ok: false, error: `${source}: ${unknown[0]}: unknown facts field (known: ${Object.keys(DeviceFactsSchema.shape).join(', ')})` };
  }
  const parsed = DeviceFactsSchema.safeParse(deepMerge(base, override));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${source}: ${issue?.path.length ? issue.path.join('.') : '(root)'}: ${issue?.message ?? 'invalid'}` };
  }
  if (parsed.data.cpu.flags.some((f) => f !== f.toLowerCase())) {
    // the matcher compares lower-case flags; keep the override honest to what a probe would produce
    parsed.data.cpu.flags = parsed.data.cpu.flags.map((f) => f.toLowerCase());
  }
  return { ok: true, value: parsed.data };
}

export type LoadOverrideResult = Result<FactsOverride>;

/** Reads a `--facts` file; the error names the file and what is wrong with it. */
export function loadFactsOverrideFile(path: string): LoadOverrideResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { ok: false, error: `${path}: cannot read facts override file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `${path}: not valid JSON (${(e as Error).message})` };
  }
  if (!isPlainObject(json)) return { ok: false, error: `${path}: (root): facts override must be a JSON object` };
  return { ok: true, value: json };
}
