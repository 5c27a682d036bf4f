import type { DeviceStatus } from './devices.ts';

/** The columns of one device that the fleet's counts depend on. */
export type Counted = { status: DeviceStatus; profileId: string | null; agentVersion: string | null; revoked: boolean; lastSeen: number | null };

/** One group of SQL's `GROUP BY status, profile_id, agent_version, revoked` (how the counts are seeded and checked). */
export type CountGroup = { status: DeviceStatus; profileId: string | null; agentVersion: string | null; revoked: number; n: number; lastSeen: number | null };

type ProfileBucket = { devices: number; byStatus: Map<DeviceStatus, number>; lastSeen: number | null };

/** A canonical plain form, for comparing two counts (tests) and nothing else. */
export type CountsSnapshot = {
  byStatus: [DeviceStatus, number][];
  byAgentVersion: [string | null, number][];
  byProfile: [string | null, { devices: number; byStatus: [DeviceStatus, number][]; lastSeen: number | null }][];
  unassigned: number;
  unrevoked: number;
};

const bump = <K>(m: Map<K, number>, k: K, by: number): void => {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
};
// SQLite's ORDER BY: NULL first, then by text
const byKey = <K extends string | null>(a: [K, unknown], b: [K, unknown]): number => (a[0] === b[0] ? 0 : a[0] === null ? -1 : b[0] === null ? 1 : a[0] < b[0] ? -1 : 1);

/**
 * The fleet's counts (by status, agent version and profile; unassigned; unrevoked) kept in memory and
 * moved by each write's before/after (see DeviceStore), so the fleet report and the device list's total
 * cost a few map reads instead of a GROUP BY over the devices table on the event loop the broker's
 * traffic shares. Pure: no SQL, no clock.
 *
 * Per-profile newest last-seen is a max: it only grows by adding. When the device holding a profile's
 * max leaves the profile or moves its last-seen back, the max is unknown without a scan: the counts
 * say `stale` and their owner rebuilds them from SQL (a rare event: a profile change of that very device).
 * Devices without a profile have no newest last-seen (the report shows it per profile only): every new
 * device is one until its birth, and tracking it made each registration a rebuild.
 */
export class DeviceCounts {
  private readonly status = new Map<DeviceStatus, number>();
  private readonly version = new Map<string | null, number>();
  private readonly profile = new Map<string | null, ProfileBucket>();
  private unassignedN = 0;
  private unrevokedN = 0;
  /** A per-profile max may have left with a device: rebuild from SQL before reading. */
  stale = false;

  static fromGroups(groups: readonly CountGroup[]): DeviceCounts {
    const c = new DeviceCounts();
    for (const g of groups) c.add({ status: g.status, profileId: g.profileId, agentVersion: g.agentVersion, revoked: g.revoked !== 0, lastSeen: g.lastSeen }, g.n);
    return c;
  }

  /** One device's counted columns went from `before` (null: it did not exist) to `after` (null: it is gone). */
  apply(before: Counted | null, after: Counted | null): void {
    if (before && after && sameCounted(before, after)) {
      if (after.lastSeen !== before.lastSeen) this.moveLastSeen(before, after);
      return;
    }
    if (before) {
      this.add(before, -1);
      const p = this.profile.get(before.profileId);
      const held = before.profileId !== null && before.lastSeen !== null && (p === undefined || p.lastSeen === before.lastSeen);
      const kept = after !== null && after.profileId === before.profileId && (after.lastSeen ?? -Infinity) >= before.lastSeen!;
      if (held && !kept && p !== undefined) this.stale = true;
    }
    if (after) this.add(after, 1);
  }

  private moveLastSeen(before: Counted, after: Counted): void {
    if (after.profileId === null) return;
    const p = this.profile.get(after.profileId)!;
    if (after.lastSeen !== null && (p.lastSeen === null || after.lastSeen > p.lastSeen)) p.lastSeen = after.lastSeen;
    else if (before.lastSeen !== null && before.lastSeen === p.lastSeen && (after.lastSeen ?? -Infinity) < before.lastSeen) this.stale = true;
  }

  private add(d: Counted, n: number): void {
    bump(this.status, d.status, n);
    bump(this.version, d.agentVersion, n);
    if (d.profileId === null && !d.revoked) this.unassignedN += n;
    if (!d.revoked) this.unrevokedN += n;
    let p = this.profile.get(d.profileId);
    if (!p) this.profile.set(d.profileId, (p = { devices: 0, byStatus: new Map(), lastSeen: null }));
    p.devices += n;
    bump(p.byStatus, d.status, n);
    if (p.devices === 0) this.profile.delete(d.profileId);
    else if (n > 0 && d.profileId !== null && d.lastSeen !== null && (p.lastSeen === null || d.lastSeen > p.lastSeen)) p.lastSeen = d.lastSeen;
  }

  get total(): number {
    let n = 0;
    for (const v of this.status.values()) n += v;
    return n;
  }
  get unassigned(): number {
    return this.unassignedN;
  }
  get unrevoked(): number {
    return this.unrevokedN;
  }

  byStatus(): { key: DeviceStatus; n: number }[] {
    return [...this.status].sort(byKey).map(([key, n]) => ({ key, n }));
  }
  byAgentVersion(): { key: string | null; n: number }[] {
    return [...this.version].sort(byKey).map(([key, n]) => ({ key, n }));
  }
  byProfile(): { profileId: string | null; devices: number; online: number; offline: number; lastSeen: number | null }[] {
    return [...this.profile].sort(byKey).map(([profileId, p]) => ({ profileId, devices: p.devices, online: p.byStatus.get('online') ?? 0, offline: p.byStatus.get('offline') ?? 0, lastSeen: p.lastSeen }));
  }

  /** Devices matching a profile and/or status filter (the device list's total without a label filter). */
  matching(f: { profile?: string; status?: DeviceStatus }): number {
    if (f.profile === undefined) return f.status === undefined ? this.total : (this.status.get(f.status) ?? 0);
    const p = this.profile.get(f.profile);
    if (!p) return 0;
    return f.status === undefined ? p.devices : (p.byStatus.get(f.status) ?? 0);
  }

  snapshot(): CountsSnapshot {
    return {
      byStatus: [...this.status].sort(byKey),
      byAgentVersion: [...this.version].sort(byKey),
      byProfile: [...this.profile].sort(byKey).map(([k, p]) => [k, { devices: p.devices, byStatus: [...p.byStatus].sort(byKey), lastSeen: p.lastSeen }]),
      unassigned: this.unassignedN,
      unrevoked: this.unrevokedN,
    };
  }
}

function sameCounted(a: Counted, b: Counted): boolean {
  return a.status === b.status && a.profileId === b.profileId && a.agentVersion === b.agentVersion && a.revoked === b.revoked;
}
