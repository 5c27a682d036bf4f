import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadProfilesFromDir } from '../../device-profiles/load.ts';
import { PROTOCOL_VERSION } from '../../shared/messages.ts';
import type { ControlPlaneContext } from '../context.ts';
import { openDatabase } from '../store/db.ts';
import { DeviceStore, type DeviceRow, type DeviceStatus } from '../store/devices.ts';
import { fleetReport } from './fleet-routes.ts';

const NOW = 1_700_000_000_000;
const loaded = loadProfilesFromDir();
if (!loaded.ok) throw new Error(loaded.error.join('\n'));
const profiles = loaded.value;

/** 1,000 devices with every mix the report counts: statuses, profiles (and none), versions, never seen, revoked. */
function populated(): { devices: DeviceStore; ctx: ControlPlaneContext } {
  const devices = new DeviceStore(openDatabase(':memory:'));
  const statuses: DeviceStatus[] = ['online', 'offline', 'unknown'];
  for (let i = 0; i < 1000; i++) {
    const id = `dev-${String(i).padStart(4, '0')}`;
    devices.createEnrolled(id, 'h', 't', NOW);
    if (i % 7 !== 0) {
      const profileId = i % 11 === 0 ? null : profiles[i % profiles.length]!.id;
      devices.recordBirth(id, { agentVersion: `1.${i % 3}.0`, facts: { platform: 'linux' } as never, profileId, profileReason: 'matched', profileHint: null, currentModel: null }, NOW - (i % 97) * 1000);
      devices.recordHeartbeat(id, { v: PROTOCOL_VERSION, msgId: `hb-${id}`, ts: 1, type: 'heartbeat', agentVersion: `1.${i % 3}.0`, uptimeSeconds: 1, load1: 0, cpuPercent: null, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null }, NOW - (i % 89) * 1000);
      devices.setStatus(id, statuses[i % 3]!, i, 'status', NOW);
    }
    if (i % 13 === 0) devices.revoke(id, NOW);
  }
  const ctx = { devices, profiles, now: () => NOW } as unknown as ControlPlaneContext;
  return { devices, ctx };
}

/** The report as it was computed before: every device loaded and counted in JavaScript. */
function reference(all: DeviceRow[]): Record<string, unknown> {
  const count = (f: (d: DeviceRow) => string | null): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const d of all) out[f(d) ?? 'none'] = (out[f(d) ?? 'none'] ?? 0) + 1;
    return out;
  };
  return {
    devices: all.length,
    byStatus: count((d) => d.status),
    byAgentVersion: count((d) => d.agentVersion),
    unassigned: all.filter((d) => d.profileId === null && d.revokedAt === null).length,
    byProfile: profiles.map((p) => {
      const ds = all.filter((d) => d.profileId === p.id);
      return {
        profileId: p.id,
        name: p.name,
        devices: ds.length,
        online: ds.filter((d) => d.status === 'online').length,
        offline: ds.filter((d) => d.status === 'offline').length,
        lastSeen: ds.reduce<number | null>((m, d) => (d.lastSeen !== null && (m === null || d.lastSeen > m) ? d.lastSeen : m), null),
      };
    }),
    lastSeen: all
      .filter((d) => d.revokedAt === null)
      .sort((a, b) => (a.lastSeen ?? 0) - (b.lastSeen ?? 0) || a.id.localeCompare(b.id))
      .map((d) => ({ id: d.id, status: d.status, profileId: d.profileId, lastSeen: d.lastSeen, secondsAgo: d.lastSeen === null ? null : Math.round((NOW - d.lastSeen) / 1000) })),
  };
}

test('the fleet report is computed in SQL: same counts as counting every device, without loading them', () => {
  const { devices, ctx } = populated();
  const expected = reference(devices.all());
  devices.all = () => {
    throw new Error('the fleet report loaded every device');
  };
  const r = fleetReport(ctx, { limit: 1000, offset: 0 });
  for (const k of ['devices', 'byStatus', 'byAgentVersion', 'unassigned', 'byProfile'] as const) assert.deepEqual(r[k], expected[k], k);
  assert.ok((expected.byStatus as Record<string, number>)['revoked']! > 0 && (expected.unassigned as number) > 0, 'the sample covers revoked and unassigned');
  assert.deepEqual(r['lastSeen'], expected['lastSeen']);
  assert.deepEqual(r['lastSeenPage'], { total: (expected['lastSeen'] as unknown[]).length, limit: 1000, offset: 0 });
});

test("the fleet report's last-seen list is paged: pages join up to the whole list, longest silent first", () => {
  const { devices, ctx } = populated();
  const whole = reference(devices.all())['lastSeen'] as { id: string; lastSeen: number | null }[];
  const first = fleetReport(ctx);
  assert.equal((first['lastSeen'] as unknown[]).length, 100, 'the default page is 100');
  const pages: unknown[] = [];
  for (let offset = 0; ; offset += 37) {
    const page = fleetReport(ctx, { limit: 37, offset })['lastSeen'] as unknown[];
    pages.push(...page);
    if (page.length < 37) break;
  }
  assert.deepEqual(pages, whole);
  assert.equal(whole[0]!.lastSeen, null, 'devices never seen come first');
  assert.deepEqual(fleetReport(ctx, { limit: 10, offset: 5000 })['lastSeen'], []);
});
