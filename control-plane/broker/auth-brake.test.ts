import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthBrake, DEFAULT_BRAKE } from './auth-brake.ts';

const k = (clientId: string, address = '10.0.0.1') => ({ clientId, username: clientId, address });

test('brake: free failures, then one attempt per slot with doubling spacing up to the cap', () => {
  const b = new AuthBrake();
  let now = 0;
  for (let i = 0; i < 3; i++) {
    assert.equal(b.admit(k('d'), now), 0);
    b.failed(k('d'), now);
  }
  // parallel attempts after the allowance queue behind each other instead of all passing at once
  b.failed(k('d'), now); // 4 failures: one over
  const waits = [b.admit(k('d'), now), b.admit(k('d'), now), b.admit(k('d'), now)];
  assert.deepEqual(waits, [0, 100, 200]);
  for (let i = 0; i < 10; i++) b.failed(k('d'), now);
  now = 10_000;
  const w1 = b.admit(k('d'), now)!;
  const w2 = b.admit(k('d'), now)!;
  assert.equal(w2 - w1, DEFAULT_BRAKE.maxDelayMs, 'spacing capped');
});

test('brake: success clears the login keys; another client id is not slowed by one login failing', () => {
  const b = new AuthBrake();
  for (let i = 0; i < 6; i++) b.failed(k('d'), 0);
  assert.equal(b.admit(k('other'), 0), 0);
  b.succeeded(k('d'));
  assert.equal(b.admit(k('d'), 0), 0);
});

test('brake: an address forgives one failure a second; a flood from it is braked, a trickle is not', () => {
  const b = new AuthBrake();
  for (let i = 0; i < 100; i++) b.failed(k(`g${i}`), i * 2000); // one failure every 2 s: leaks away
  assert.equal(b.admit(k('fresh'), 200_000), 0);
  for (let i = 0; i < 100; i++) b.failed(k(`h${i}`, '10.0.0.2'), 300_000 + i); // 100 within 0.1 s
  assert.ok(b.admit(k('fresh2', '10.0.0.2'), 300_100)! >= 0);
  assert.ok(b.admit(k('fresh3', '10.0.0.2'), 300_100)! > 0, 'the second parallel attempt waits');
});

test('brake: refuses outright past maxWaitMs and stays bounded', () => {
  const b = new AuthBrake({ ...DEFAULT_BRAKE, maxWaitMs: 1000, maxKeys: 50 });
  for (let i = 0; i < 20; i++) b.failed(k('d'), 0);
  const waits: (number | null)[] = [];
  for (let i = 0; i < 5; i++) waits.push(b.admit(k('d'), 0));
  assert.ok(waits.includes(null));
  for (let i = 0; i < 500; i++) b.failed(k(`x${i}`, `a${i}`), 0);
  assert.ok(b.size <= 50);
});
