import { DeviceListQuerySchema, DevicePatchSchema } from '../../shared/http.ts';
import { PROTOCOL_VERSION, newMsgId } from '../../shared/messages.ts';
import type { ControlPlaneContext } from '../context.ts';
import { decideProfile } from '../fleet/registration.ts';
import type { DeviceRow } from '../store/devices.ts';
import { ApiError, notFound } from './errors.ts';
import type { RouteTable } from './route-table.ts';

export function deviceView(d: DeviceRow): Record<string, unknown> {
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
    heartbeat: d.heartbeat,
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
    summary: 'List devices, filtered by profile, status and labels (key=value,...), paginated',
    query: DeviceListQuerySchema,
    handler: (c, { query }) => {
      const filter = { limit: query.limit, offset: query.offset, ...(query.profile ? { profile: query.profile } : {}), ...(query.status ? { status: query.status } : {}), ...(query.label ? { labels: query.label } : {}) };
      const { items, total } = ctx.devices.list(filter);
      return c.json({ items: items.map(deviceView), total, limit: query.limit, offset: query.offset });
    },
  });

  table.add({
    method: 'get',
    path: '/devices/:id',
    tag: 'devices',
    summary: 'One device: facts, profile and why, labels, last heartbeat, presence history',
    handler: (c, { params }) => {
      const d = mustGet(params.id!);
      return c.json({ ...deviceView(d), statusHistory: ctx.devices.statusHistory(d.id) });
    },
  });

  table.add({
    method: 'patch',
    path: '/devices/:id',
    tag: 'devices',
    summary: 'Set or remove labels; set or clear the operator profile override',
    body: DevicePatchSchema,
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
    handler: async (c, { params }) => {
      const d = mustGet(params.id!);
      if (d.revokedAt !== null) throw new ApiError(409, 'revoked', `device "${d.id}" is revoked`);
      await ctx.fleet.publishCommand(d.id, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: ctx.now(), cmd: 'rebirth' });
      return c.json({ id: d.id, sent: 'rebirth' }, 202);
    },
  });
}
