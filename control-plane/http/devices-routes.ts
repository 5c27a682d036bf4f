import { DeviceDetailSchema, DeviceListSchema, DeviceRebirthSchema, DeviceRevokedSchema, DeviceViewSchema, type DeviceDetail, type DeviceView } from '../../shared/api/devices.ts';
import { DeviceListQuerySchema, DevicePatchSchema } from '../../shared/http.ts';
import { failedRules } from '../../shared/matcher.ts';
import { PROTOCOL_VERSION, newMsgId } from '../../shared/messages.ts';
import type { ControlPlaneContext } from '../context.ts';
import { decideProfile } from '../fleet/registration.ts';
import type { DeviceRow } from '../store/devices.ts';
import { ApiError, notFound } from './errors.ts';
import type { RouteTable } from './route-table.ts';

export function deviceView(d: DeviceRow): DeviceView {
  return {
    id: d.id,
    status: d.status,
    profileId: d.profileId,
    profileReason: d.profileReason,
    profileOverride: d.profileOverride,
    labels: d.labels,
    agentVersion: d.agentVersion,
    lastSeen: d.lastSeen,
    createdAt: d.createdAt,
    revokedAt: d.revokedAt,
    currentModel: d.currentModel,
    facts: d.facts,
    heartbeat: d.heartbeat
      ? {
          ts: d.heartbeat.ts,
          agentVersion: d.heartbeat.agentVersion,
          uptimeSeconds: d.heartbeat.uptimeSeconds,
          load1: d.heartbeat.load1,
          cpuPercent: d.heartbeat.cpuPercent,
          memUsedBytes: d.heartbeat.memUsedBytes,
          memTotalBytes: d.heartbeat.memTotalBytes,
          temperatureC: d.heartbeat.temperatureC,
          activeModel: d.heartbeat.activeModel,
        }
      : null,
    births: d.birthCount,
  };
}

export function registerDeviceRoutes(table: RouteTable, ctx: ControlPlaneContext): void {
  const mustGet = (id: string): DeviceRow => {
    const d = ctx.devices.get(id);
    if (!d) throw notFound('device', id);
    return d;
  };

  table.add({
    method: 'get',
    path: '/devices',
    tag: 'devices',
    summary: 'List devices, filtered by profile, status, labels (key=value,...) and id text (?q), paginated',
    query: DeviceListQuerySchema,
    response: DeviceListSchema,
    handler: (c, { query }) => {
      const filter = { limit: query.limit, offset: query.offset, ...(query.profile ? { profile: query.profile } : {}), ...(query.status ? { status: query.status } : {}), ...(query.label ? { labels: query.label } : {}), ...(query.q ? { idContains: query.q } : {}) };
      const { items, total } = ctx.devices.list(filter);
      return c.json({ items: items.map(deviceView), total, limit: query.limit, offset: query.offset });
    },
  });

  table.add({
    method: 'get',
    path: '/devices/:id',
    tag: 'devices',
    summary: 'One device: facts, profile and why (each profile\'s failed match rules), labels, last heartbeat, recent health points, presence history',
    response: DeviceDetailSchema,
    handler: (c, { params }) => {
      const d = mustGet(params.id!);
      const facts = d.facts;
      const profileMatches = facts
        ? ctx.profiles.map((p) => {
            const failed = failedRules(p.match, facts);
            return { profileId: p.id, priority: p.priority, matches: failed.length === 0, failedRules: failed };
          })
        : [];
      const body: DeviceDetail = { ...deviceView(d), statusHistory: ctx.devices.statusHistory(d.id), profileMatches, heartbeats: ctx.heartbeats.recent(d.id, ctx.now()) };
      return c.json(body);
    },
  });

  table.add({
    method: 'patch',
    path: '/devices/:id',
    tag: 'devices',
    summary: 'Set or remove labels; set or clear the operator profile override',
    body: DevicePatchSchema,
    response: DeviceViewSchema,
    handler: (c, { params, body }) => {
      const d = mustGet(params.id!);
      if (d.revokedAt !== null) throw new ApiError(409, 'revoked', `device "${d.id}" is revoked`);
      const patch: Parameters<typeof ctx.devices.update>[1] = {};
      if (body.labels) {
        const labels = { ...d.labels };
        for (const [k, v] of Object.entries(body.labels)) {
          if (v === null) delete labels[k];
          else labels[k] = v;
        }
        patch.labels = labels;
      }
      if (body.profileOverride !== undefined) {
        if (body.profileOverride !== null && !ctx.profiles.some((p) => p.id === body.profileOverride)) {
          throw new ApiError(400, 'bad-request', `bad body: profileOverride: unknown profile "${body.profileOverride}" (known: ${ctx.profiles.map((p) => p.id).join(', ')})`);
        }
        patch.profileOverride = body.profileOverride;
        const decision = d.facts ? decideProfile(d.facts, ctx.profiles, body.profileOverride, d.profileHint) : { profileId: body.profileOverride, reason: 'override' };
        patch.profileId = decision.profileId;
        patch.profileReason = decision.reason;
      }
      ctx.devices.update(d.id, patch);
      ctx.log.info('device updated by operator', { deviceId: d.id, ...body });
      return c.json(deviceView(mustGet(d.id)));
    },
  });

  table.add({
    method: 'delete',
    path: '/devices/:id',
    tag: 'devices',
    summary: 'Revoke a device: its credential is removed and it is disconnected; its record stays',
    response: DeviceRevokedSchema,
    handler: async (c, { params }) => {
      const d = mustGet(params.id!);
      const changed = ctx.devices.revoke(d.id, ctx.now());
      await ctx.broker.revokeDevice(d.id);
      ctx.log.info('device revoked', { deviceId: d.id, changed });
      return c.json({ id: d.id, revoked: true });
    },
  });

  table.add({
    method: 'post',
    path: '/devices/:id/rebirth',
    tag: 'devices',
    summary: 'Ask a device to announce itself again (fresh facts)',
    response: DeviceRebirthSchema,
    status: 202,
    handler: async (c, { params }) => {
      const d = mustGet(params.id!);
      if (d.revokedAt !== null) throw new ApiError(409, 'revoked', `device "${d.id}" is revoked`);
      await ctx.fleet.publishCommand(d.id, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: ctx.now(), cmd: 'rebirth' });
      return c.json({ id: d.id, sent: 'rebirth' }, 202);
    },
  });
}
