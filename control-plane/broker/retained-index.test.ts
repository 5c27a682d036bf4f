import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetainedIndex } from './retained-index.ts';

const topics = (idx: RetainedIndex<string>, filter: string): string[] => [...idx.match(filter)].sort();

function sample(): RetainedIndex<string> {
  const idx = new RetainedIndex<string>();
  for (const t of ['edgefleet/v1/devices/a/status', 'edgefleet/v1/devices/b/status', 'edgefleet/v1/devices/b/xfer/data', 'sport', 'sport/tennis', 'sport//x', '$SYS/uptime', '/lead']) idx.set(t, t);
  return idx;
}

test('literal filters, + and # follow MQTT 3.1.1 matching', () => {
  const idx = sample();
  assert.deepEqual(topics(idx, 'edgefleet/v1/devices/a/status'), ['edgefleet/v1/devices/a/status']);
  assert.deepEqual(topics(idx, 'edgefleet/v1/devices/a/cmd'), []);
  assert.deepEqual(topics(idx, 'edgefleet/v1/devices/+/status'), ['edgefleet/v1/devices/a/status', 'edgefleet/v1/devices/b/status']);
  assert.deepEqual(topics(idx, 'edgefleet/v1/devices/b/#'), ['edgefleet/v1/devices/b/status', 'edgefleet/v1/devices/b/xfer/data']);
  assert.deepEqual(topics(idx, 'sport/#'), ['sport', 'sport//x', 'sport/tennis'], '# matches the parent level too');
  assert.deepEqual(topics(idx, 'sport/+'), ['sport/tennis'], '+ is exactly one level');
  assert.deepEqual(topics(idx, 'sport/+/x'), ['sport//x'], '+ matches an empty level');
  assert.deepEqual(topics(idx, '+/lead'), ['/lead']);
  assert.ok(!topics(idx, '#').includes('$SYS/uptime'), 'wildcards at the first level skip $ topics');
  assert.deepEqual(topics(idx, '$SYS/#'), ['$SYS/uptime']);
  assert.equal(topics(idx, '#').length, 7);
});

test('replace, delete and pruning keep the size right', () => {
  const idx = sample();
  idx.set('sport', 'again');
  assert.equal(idx.size, 8);
  assert.equal(idx.get('sport'), 'again');
  assert.ok(idx.delete('sport/tennis'));
  assert.ok(!idx.delete('sport/tennis'));
  assert.ok(!idx.delete('no/such/topic'));
  assert.equal(idx.size, 7);
  assert.deepEqual(topics(idx, 'sport/#'), ['again', 'sport//x']);
  for (const t of [...idx.match('#')]) idx.delete(t === 'again' ? 'sport' : t);
  idx.delete('$SYS/uptime');
  assert.equal(idx.size, 0);
  assert.deepEqual(topics(idx, '#'), []);
});

test('a literal filter costs the same with 1,000 or 100,000 retained devices', () => {
  const cost = (n: number): number => {
    const idx = new RetainedIndex<string>();
    for (let i = 0; i < n; i++) idx.set(`edgefleet/v1/devices/d${i}/status`, 'x');
    let visited = 0;
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) for (const _ of idx.match(`edgefleet/v1/devices/d${i % n}/cmd`)) visited++;
    assert.equal(visited, 0);
    return performance.now() - t0;
  };
  const small = cost(1000);
  const big = cost(100_000);
  // O(1) per SUBSCRIBE: a linear scan would be 100x slower; allow generous noise on a loaded machine
  assert.ok(big < small * 10 + 50, `1k: ${small.toFixed(1)} ms, 100k: ${big.toFixed(1)} ms for 2,000 lookups`);
});
