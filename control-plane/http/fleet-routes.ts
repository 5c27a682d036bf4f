import { FleetReportSchema, type FleetReport } from '../../shared/api/devices.ts';
import { EnrollmentTokenCreatedSchema, EnrollmentTokenListSchema, EnrollmentTokenRevokedSchema, ProfileListSchema, ProfileSchema } from '../../shared/api/fleet.ts';
import { BrokerUnavailableError } from '../broker/broker-access.ts';
import { EnrollmentTokenCreateSchema, FleetReportQuerySchema, type FleetReportQuery } from '../../shared/http.ts';
import { TOPIC_ROOT } from '../../shared/topics.ts';
import type { ControlPlaneContext } from '../context.ts';
import { hashSecret, randomToken } from '../store/secrets.ts';
import { tokenUnusableReason } from '../store/tokens.ts';
import { notFound } from './errors.ts';
import type { RouteTable } from './route-table.ts';
import { randomBytes } from 'node:crypto';

/**
 * Fleet-wide report: counts by profile, status and agent version, and one page of the last-seen list
 * (longest silent first). The counts come from the store's DeviceCounts (kept in memory by the table's
 * only writer, equal to the GROUP BY: control-plane/store/device-counts.test.ts); the list is one SQL
 * page (LIMIT/OFFSET on an index). It never loads or scans every device, so it costs well under a
 * millisecond of the event loop the broker's traffic shares, whatever the fleet size.
 */
export function fleetReport(ctx: ControlPlaneContext, page: FleetReportQuery = { limit: 100, offset: 0 }): FleetReport {
  const counts = (column: 'status' | 'agent_version'): Record<string, number> =>
    Object.fromEntries(ctx.devices.countsBy(column).map((r) => [r.key ?? 'none', r.n]));
  const perProfile = new Map(ctx.devices.profileCounts().map((r) => [r.profileId, r]));
  const byProfile = ctx.profiles.map((p) => {
    const r = perProfile.get(p.id);
    return { profileId: p.id, name: p.name, devices: r?.devices ?? 0, online: r?.online ?? 0, offline: r?.offline ?? 0, lastSeen: r?.lastSeen ?? null };
  });
  const byStatus = counts('status');
  const now = ctx.now();
  const lastSeen = ctx.devices.lastSeenPage(page.limit, page.offset);
  return {
    generatedAt: now,
    devices: Object.values(byStatus).reduce((a, b) => a + b, 0),
    byStatus,
    byProfile,
    byAgentVersion: counts('agent_version'),
    unassigned: ctx.devices.unassignedCount(),
    lastSeen: lastSeen.items.map((d) => ({ ...d, secondsAgo: d.lastSeen === null ? null : Math.round((now - d.lastSeen) / 1000) })),
    lastSeenPage: { total: lastSeen.total, limit: page.limit, offset: page.offset },
  };
}

export function registerFleetRoutes(table: RouteTable, ctx: ControlPlaneContext): void {
  table.add({
    method: 'get',
    path: '/profiles',
    tag: 'profiles',
    summary: 'Device profiles: match rules, runtime, quantization recipe, benchmark settings',
    response: ProfileListSchema,
    handler: (c) => c.json({ items: ctx.profiles, counts: Object.fromEntries(ctx.devices.countsBy('profile_id').map((r) => [r.key ?? 'none', r.n])) }),
  });

  table.add({
    method: 'get',
    path: '/profiles/:id',
    tag: 'profiles',
    summary: 'One device profile',
    response: ProfileSchema,
    handler: (c, { params }) => {
      const p = ctx.profiles.find((x) => x.id === params.id);
      if (!p) throw notFound('profile', params.id!);
      return c.json(p);
    },
  });

  table.add({
    method: 'get',
    path: '/reports/fleet',
    tag: 'reports',
    summary: 'Fleet report: devices by profile, status and agent version; one page (limit, offset) of the last-seen list, longest silent first',
    query: FleetReportQuerySchema,
    response: FleetReportSchema,
    handler: (c, { query }) => c.json(fleetReport(ctx, query)),
  });

  table.add({
    method: 'get',
    path: '/metrics',
    tag: 'system',
    summary: 'Prometheus metrics',
    produces: ['text/plain'],
    handler: async (c) => {
      const body = await ctx.metrics.render();
      return c.text(body, 200, { 'content-type': ctx.metrics.contentType });
    },
  });

  table.add({
    method: 'post',
    path: '/enrollment-tokens',
    tag: 'enrollment',
    summary: 'Create a fleet enrollment token (shown once) with an expiry and a use count',
    body: EnrollmentTokenCreateSchema,
    response: EnrollmentTokenCreatedSchema,
    status: 201,
    handler: async (c, { body }) => {
      const now = ctx.now();
      const available = ctx.broker.availability();
      if (!available.ok) throw new BrokerUnavailableError(`the token was not created: ${available.reason}`);
      const id = randomBytes(6).toString('hex');
      const secret = randomToken(24);
      const secretHash = hashSecret(secret);
      const expiresAt = body.expiresInSeconds === null ? null : now + body.expiresInSeconds * 1000;
      ctx.tokens.create({ id, secretHash, label: body.label, expiresAt, maxUses: body.maxUses }, now);
      try {
        await ctx.broker.grantEnrollmentToken(id, secretHash);
      } catch (e) {
        // a token no broker knows is no use: withdraw it (the store's revocation also wins the next broker resync)
        ctx.tokens.revoke(id, ctx.now());
        await ctx.broker.revokeEnrollmentToken(id);
        throw e instanceof BrokerUnavailableError ? new BrokerUnavailableError(`the token was not created: ${e.message}`) : e;
      }
      ctx.log.info('enrollment token created', { tokenId: id, label: body.label, expiresAt, maxUses: body.maxUses });
      return c.json({ id, token: `${id}.${secret}`, label: body.label, expiresAt, maxUses: body.maxUses, brokerUrl: ctx.brokerUrl, topicRoot: TOPIC_ROOT }, 201);
    },
  });

  table.add({
    method: 'get',
    path: '/enrollment-tokens',
    tag: 'enrollment',
    summary: 'List enrollment tokens (never their secrets) with uses and state',
    response: EnrollmentTokenListSchema,
    handler: (c) => {
      const now = ctx.now();
      return c.json({ items: ctx.tokens.list().map((t) => ({ ...t, usable: tokenUnusableReason(t, now) === null, state: tokenUnusableReason(t, now) ?? 'usable' })) });
    },
  });

  table.add({
    method: 'delete',
    path: '/enrollment-tokens/:id',
    tag: 'enrollment',
    summary: 'Revoke an enrollment token; devices already enrolled keep their own credentials',
    response: EnrollmentTokenRevokedSchema,
    handler: async (c, { params }) => {
      const t = ctx.tokens.get(params.id!);
      if (!t) throw notFound('enrollment token', params.id!);
      ctx.tokens.revoke(t.id, ctx.now());
      await ctx.broker.revokeEnrollmentToken(t.id);
      return c.json({ id: t.id, revoked: true });
    },
  });
}
