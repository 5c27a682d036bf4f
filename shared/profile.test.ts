import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BUILTIN_PROFILES_DIR, loadProfilesFromDir } from '../device-profiles/load.ts';
import { parseProfileFiles } from './profile.ts';

const builtin = (name: string) => JSON.parse(readFileSync(join(BUILTIN_PROFILES_DIR, `${name}.json`), 'utf8')) as Record<string, unknown>;

test('profiles: the five built-in profiles load', () => {
  const r = loadProfilesFromDir();
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((p) => p.id).sort(), ['armv82-dotprod', 'generic-cpu', 'iphone-class-cpu', 'jetson-trt-int8', 'x86-64-vnni']);
  const jetson = r.value.find((p) => p.id === 'jetson-trt-int8')!;
  assert.equal(jetson.recipe.activations.symmetric, true);
  assert.equal(jetson.runtime.engine, 'tensorrt');
  const x86 = r.value.find((p) => p.id === 'x86-64-vnni')!;
  assert.equal(x86.recipe.activations.dtype, 'uint8');
  assert.equal(x86.recipe.reduceRange, false);
});

test('profiles: a bad field is reported with the file name and the field path', () => {
  const bad = builtin('x86-64-vnni');
  (bad.recipe as Record<string, unknown>).activations = { dtype: 'int4', symmetric: false, granularity: 'per-tensor' };
  const r = parseProfileFiles([{ name: 'x86-64-vnni.json', text: JSON.stringify(bad) }, { name: 'generic-cpu.json', text: JSON.stringify(builtin('generic-cpu')) }]);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.error.some((e) => e.startsWith('x86-64-vnni.json: recipe.activations.dtype:')), JSON.stringify(r));
});

test('profiles: broken JSON, unknown keys, a bad regex, id/file mismatch and a missing fallback are each named', () => {
  const unknownKey = { ...builtin('armv82-dotprod'), colour: 'red' };
  const badRegex = builtin('jetson-trt-int8');
  (badRegex.match as Record<string, unknown>).deviceTreeModelPattern = '([';
  const r = parseProfileFiles([
    { name: 'broken.json', text: '{"id": ' },
    { name: 'armv82-dotprod.json', text: JSON.stringify(unknownKey) },
    { name: 'jetson-trt-int8.json', text: JSON.stringify(badRegex) },
    { name: 'renamed.json', text: JSON.stringify(builtin('generic-cpu')) },
  ]);
  assert.ok(!r.ok);
  const text = r.error.join('\n');
  assert.match(text, /broken\.json: not valid JSON/);
  assert.match(text, /armv82-dotprod\.json: \(root\): .*colour/);
  assert.match(text, /jetson-trt-int8\.json: match\.deviceTreeModelPattern: not a valid regular expression/);
  assert.match(text, /renamed\.json: id: "generic-cpu" must equal the file name "renamed"/);

  const noFallback = parseProfileFiles([{ name: 'x86-64-vnni.json', text: JSON.stringify(builtin('x86-64-vnni')) }]);
  assert.ok(!noFallback.ok && /no fallback profile/.test(noFallback.error[0]!));
});

test('profiles: benchmark maxSeconds below minSeconds is refused', () => {
  const p = builtin('generic-cpu');
  p.benchmark = { ...(p.benchmark as object), minSeconds: 10, maxSeconds: 5 };
  const r = parseProfileFiles([{ name: 'generic-cpu.json', text: JSON.stringify(p) }]);
  assert.ok(!r.ok && r.error.some((e) => e.startsWith('generic-cpu.json: benchmark.maxSeconds:')));
});

test('profiles: loading from a folder reports unreadable folders and empty folders', () => {
  assert.match((loadProfilesFromDir('/no/such/dir') as { error: string[] }).error[0]!, /cannot read profile folder/);
  const dir = mkdtempSync(join(tmpdir(), 'ef-prof-'));
  assert.match((loadProfilesFromDir(dir) as { error: string[] }).error[0]!, /no \*\.json profile files/);
  writeFileSync(join(dir, 'generic-cpu.json'), JSON.stringify(builtin('generic-cpu')));
  assert.ok(loadProfilesFromDir(dir).ok);
});
