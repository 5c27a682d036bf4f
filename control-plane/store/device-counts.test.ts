import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION, type Heartbeat } from '../../shared/messages.ts';
import { openDatabase } from './db.ts';
import { DeviceStore, type BirthRecord, type PresenceOp } from './devices.ts';

const PROFILES = ['armv82-dotprod', 'generic-cpu', 'x86-64-vnni', null] as const;
const VERSIONS = ['0.1.0', '0.2.0', '0.3.0'];

/** A small seeded generator: the same op sequence on every run, so a failure names a step that replays. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

const birth = (profileId: string | null, agentVersion: string): BirthRecord => ({ agentVersion, facts: { platform: 'linux' } as never, profileId, profileReason: 'test', profileHint: null, currentModel: null });
const heartbeat = (agentVersion: string): Heartbeat => ({ v: PROTOCOL_VERSION, msgId: `hb-${Math.random()}`, ts: 1, type: 'heartbeat', agentVersion, uptimeSeconds: 1, load1: 0, cpuPercent: null, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null });

test('the counts kept in memory equal the GROUP BY over the table after every kind of write, rolled-back batches included', () => {
  const store = new DeviceStore(openDatabase(':memory:'));
  const r = rng(10);
  const ids = Array.from({ length: 60 }, (_, i) => `dev-${i}`);
  let now = 1_000_000;
  let rebuilds = 0;
  const statuses = new Set<string>();
  const check = (step: string): void => {
    const scans = store.countScans;
    const mem = store.counts().snapshot();
    rebuilds += store.countScans - scans;
    for (const [status] of mem.byStatus) statuses.add(status);
    if (mem.unassigned > 0) statuses.add('unassigned');
    assert.deepEqual(mem, store.countsFromSql().snapshot(), `after step ${step}`);
  };
  check('start');
  const kinds = new Map<string, number>();
  for (let step = 0; step < 3000; step++) {
    now += 1 + r(1000);
    const id = ids[r(ids.length)]!;
    const kind = ['enroll', 'birth', 'heartbeat', 'online', 'will', 'stale-will', 'revoke', 'override', 'batch', 'failed-batch', 'clock-back'][r(11)]!;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    switch (kind) {
      case 'enroll': // new or re-enrolled after a revocation
        store.createEnrolled(id, 'h', 't', now);
        break;
      case 'birth':
        store.recordBirth(id, birth(PROFILES[r(PROFILES.length)]!, VERSIONS[r(VERSIONS.length)]!), now);
        break;
      case 'heartbeat': // an agent upgraded between heartbeats changes its version here
        store.recordHeartbeat(id, heartbeat(VERSIONS[r(VERSIONS.length)]!), now);
        break;
      case 'online':
        store.setStatus(id, 'online', now, 'status', now);
        break;
      case 'will':
        store.setStatus(id, 'offline', now, 'will-or-goodbye', now);
        break;
      case 'stale-will': // refused by the stamp rule: nothing moves
        store.setStatus(id, 'offline', 0, 'will-or-goodbye', now);
        break;
      case 'revoke':
        store.revoke(id, now);
        break;
      case 'override':
        store.update(id, { profileId: PROFILES[r(PROFILES.length)]!, profileReason: 'override', labels: { k: String(r(3)) } });
        break;
      case 'batch':
      case 'failed-batch': {
        const ops: PresenceOp[] = Array.from({ length: 1 + r(8) }, (_, k): PresenceOp => {
          const d = ids[r(ids.length)]!;
          const c = r(4);
          if (c === 0) return { kind: 'heartbeat', deviceId: d, heartbeat: heartbeat(VERSIONS[r(VERSIONS.length)]!), at: now + k };
          if (c === 1) return { kind: 'birth', deviceId: d, birth: birth(PROFILES[r(PROFILES.length)]!, VERSIONS[r(VERSIONS.length)]!), at: now + k };
          return { kind: 'status', deviceId: d, status: c === 2 ? 'online' : 'offline', stamp: now + k, reason: 'status', at: now + k };
        });
        if (kind === 'batch') store.applyBatch(ops);
        else {
          // the health-history write of the batch's last heartbeat fails: the whole transaction rolls back, and so must the counts
          const last: PresenceOp = { kind: 'heartbeat', deviceId: id, heartbeat: heartbeat(VERSIONS[r(VERSIONS.length)]!), at: now + ops.length };
          ops.push(last);
          assert.throws(
            () =>
              store.applyBatch(ops, (op) => {
                if (op === last) throw new Error('disk full');
              }),
            /disk full/,
          );
        }
        break;
      }
      case 'clock-back': // the host clock stepped back: a device's last-seen moves down
        store.recordHeartbeat(id, heartbeat(VERSIONS[0]!), now - 500_000);
        break;
    }
    check(`${step} (${kind} ${id})`);
  }
  for (const k of ['enroll', 'birth', 'heartbeat', 'will', 'revoke', 'override', 'batch', 'failed-batch', 'clock-back']) assert.ok((kinds.get(k) ?? 0) > 100, `${k} exercised`);
  assert.deepEqual([...statuses].sort(), ['offline', 'online', 'revoked', 'unassigned', 'unknown'], 'every status was counted on the way');
  // a rebuild (a scan) happens only where a profile's newest last-seen left with a device: far fewer than the writes
  assert.ok(rebuilds < 3000 / 5, `${rebuilds} rebuilds in 3000 steps`);
  console.log(`# 3000 writes checked against SQL; counts rebuilt from a scan ${rebuilds} times`);
});

test('heartbeats, births and wills of a steady fleet never make the counts scan the table', () => {
  const store = new DeviceStore(openDatabase(':memory:'));
  let now = 1_000_000;
  for (let i = 0; i < 500; i++) store.createEnrolled(`d${i}`, 'h', 't', now);
  store.applyBatch(Array.from({ length: 500 }, (_, i): PresenceOp => ({ kind: 'birth', deviceId: `d${i}`, birth: birth(PROFILES[i % 4]!, '0.1.0'), at: now })));
  assert.equal(store.counts().byStatus()[0]?.n, 500);
  const scans = store.countScans;
  for (let round = 0; round < 20; round++) {
    now += 10_000;
    const ops: PresenceOp[] = Array.from({ length: 500 }, (_, i): PresenceOp => ({ kind: 'heartbeat', deviceId: `d${i}`, heartbeat: heartbeat('0.1.0'), at: now + i }));
    // a tenth of the fleet drops and comes back each round
    for (let i = round; i < 500; i += 10) ops.push({ kind: 'status', deviceId: `d${i}`, status: 'offline', stamp: now, reason: 'will-or-goodbye', at: now + 600 }, { kind: 'status', deviceId: `d${i}`, status: 'online', stamp: now + 1, reason: 'status', at: now + 601 });
    store.applyBatch(ops);
    store.profileCounts();
    store.countsBy('agent_version');
  }
  assert.equal(store.countScans, scans, 'no scan after the first');
  // a new device says online before its birth gives it a profile: registrations do not make the counts scan either
  now += 10_000; // each newcomer is the most recently seen device without a profile until its birth
  for (let i = 500; i < 700; i++) store.createEnrolled(`d${i}`, 'h', 't', now);
  for (let i = 500; i < 700; i++) {
    now += 1;
    store.applyBatch([{ kind: 'status', deviceId: `d${i}`, status: 'online', stamp: now, reason: 'status', at: now }, { kind: 'birth', deviceId: `d${i}`, birth: birth(PROFILES[i % 3]!, '0.1.0'), at: now + 1 }]);
    store.counts();
  }
  assert.equal(store.countScans, scans, 'no scan for 200 registrations');
  assert.deepEqual(store.counts().snapshot(), store.countsFromSql().snapshot());
});
