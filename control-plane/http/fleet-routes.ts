import { FleetReportSchema, type FleetReport } from '../../shared/api/devices.ts';
import { EnrollmentTokenCreatedSchema, EnrollmentTokenListSchema, EnrollmentTokenRevokedSchema, ProfileListSchema, ProfileSchema } from '../../shared/api/fleet.ts';
import { BrokerUnavailableError } from '../broker/broker-access.ts';
import { EnrollmentTokenCreateSchema } from '../../shared/http.ts';
import { TOPIC_ROOT } from '../../shared/topics.ts';
import type { ControlPlaneContext } from '../context.ts';
import { hashSecret, randomToken } from '../store/secrets.ts';
import { tokenUnusableReason } from '../store/tokens.ts';
import { notFound } from './errors.ts';
import type { RouteTable } from './route-table.ts';
import { randomBytes } from 'node:crypto';

/** Fleet-wide report: counts by profile, status and agent version, and when devices were last seen. */
export function fleetReport(ctx: ControlPlaneContext): FleetReport {
  const all = ctx.devices.all();
  const count = (f: (d: (typeof all)[number]) => string | null): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const d of all) {
      const k = f(d) ?? 'none';
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  };
  const byProfile = ctx.profiles.map((p) => {
    const ds = all.filter((d) => d.profileId === p.id);
    return {
      profileId: p.id,
      name: p.name,
      devices: ds.length,
      online: ds.filter((d) => d.status === 'online').length,
      offline: ds.filter((d) => d.status === 'offline').length,
      lastSeen: ds.reduce<number | null>((m, d) => (d.lastSeen !== null && (m === null || d.lastSeen > m) ? d.lastSeen : m), null),
    };
  });
  const now = ctx.now();
  return {
    generatedAt: now,
    devices: all.length,
    byStatus: count((d) => d.status),
    byProfile,
    byAgentVersion: count((d) => d.agentVersion),
    unassigned: all.filter((d) => d.profileId === null && d.revokedAt === null).length,
    lastSeen: all
      .filter((d) => d.revokedAt === null)
      .map((d) => ({ id: d.id, status: d.status, profileId: d.profileId, lastSeen: d.lastSeen, secondsAgo: d.lastSeen === null ? null : Math.round((now - d.lastSeen) / 1000) }))
      .sort((a, b) => (a.lastSeen ?? 0) - (b.lastSeen ?? 0)),
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
    summary: 'Fleet report: devices by profile, status and agent version; last seen',
    response: FleetReportSchema,
    handler: (c) => c.json(fleetReport(ctx)),
  });

  table.add({
    method: 'get',
    path: '/metrics',
    tag: 'system',
    summary: 'Prometheus metrics',
    produces: ['text/plain'],
    handler: (c) => {
      const body = ctx.metrics.render();
      return c.text(body, 200, { 'content-type': 'text/plain; version=0.0.4' });
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
