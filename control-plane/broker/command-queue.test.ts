import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerUnavailableError } from './broker-access.ts';
import { CommandQueue, ConnectionLost } from './command-queue.ts';

test('queue: batches lines, keeps at most maxInFlight messages outstanding, keeps order', async () => {
  const sent: string[][] = [];
  let inFlight = 0;
  let peak = 0;
  const q = new CommandQueue({
    maxInFlight: 2,
    maxLines: 10,
    unavailableReason: () => 'test',
    send: async (lines) => {
      sent.push(lines);
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return lines.map(() => null);
    },
  });
  q.setOpen(true);
  await Promise.all(Array.from({ length: 95 }, (_, i) => q.enqueue(`device d${i} h`, 5000)));
  assert.ok(peak <= 2);
  assert.deepEqual(sent.flat(), Array.from({ length: 95 }, (_, i) => `device d${i} h`));
  assert.ok(sent.length <= 15, `${sent.length} messages for 95 lines`);
});

test('queue: a lost connection puts the batch back and it is sent again; per-line errors reject only that command', async () => {
  let calls = 0;
  const q = new CommandQueue({
    unavailableReason: () => 'test',
    send: async (lines) => {
      if (++calls === 1) throw new ConnectionLost('gone');
      return lines.map((l) => (l.includes('bad') ? 'invalid' : null));
    },
  });
  q.setOpen(true);
  const ok = q.enqueue('device a h', null);
  const bad = q.enqueue('device bad h', null);
  await ok;
  await assert.rejects(bad, /invalid/);
  assert.ok(calls >= 2);
});

test('queue: while closed, a grant past its deadline is refused with BrokerUnavailableError and a revocation waits', async () => {
  const sent: string[] = [];
  const q = new CommandQueue({ unavailableReason: () => 'broker down', send: async (lines) => (sent.push(...lines), lines.map(() => null)) });
  const keepAlive = setTimeout(() => {}, 5000); // the queue's deadline timers are unref'd
  const grant = q.enqueue('device g h', 50);
  const revoke = q.enqueue('undevice r', null);
  await assert.rejects(grant, (e: unknown) => e instanceof BrokerUnavailableError && /broker down/.test((e as Error).message));
  q.setOpen(true);
  await revoke;
  assert.deepEqual(sent, ['undevice r']);
  clearTimeout(keepAlive);
});

test('queue: refuses grants past maxQueued (overload slows enrollment, never grows without bound)', async () => {
  const q = new CommandQueue({ maxQueued: 3, unavailableReason: () => 'x', send: async (l) => l.map(() => null) });
  const held = [q.enqueue('a', 10_000), q.enqueue('b', 10_000), q.enqueue('c', 10_000)];
  await assert.rejects(q.enqueue('d', 10_000), /overloaded/);
  q.setOpen(true);
  await Promise.all(held);
});
