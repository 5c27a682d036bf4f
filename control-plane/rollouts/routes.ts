import { ModelReportSchema, RolloutListSchema, RolloutReportSchema, RolloutViewQuerySchema, RolloutViewSchema, rolloutDeviceCursor, type RolloutViewQuery } from '../../shared/api/rollouts.ts';
import { z } from 'zod';
import { decimalInt } from '../../shared/http.ts';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import type { ControlPlaneContext } from '../context.ts';
import { ApiError, notFound } from '../http/errors.ts';
import { RolloutError } from './errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import { modelReport, rolloutDeviceView, rolloutReport, rolloutSummary, rolloutWaves, toCsv } from './reports.ts';
import type { RolloutService } from './rollout-service.ts';
import type { RolloutStore } from './rollout-store.ts';

/** The rollout service's refusals, in HTTP: the only place they become status codes. */
export function toApiError(e: RolloutError): ApiError {
  if (e.kind === 'not-found') return new ApiError(404, 'not-found', e.message);
  if (e.kind === 'conflict') return new ApiError(409, 'conflict', e.message);
  const field = e.field ?? 'body';
  return new ApiError(400, 'bad-request', `bad body: ${field}: ${e.message}`, [{ path: field.split('.'), message: e.message }]);
}

async function domain<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw e instanceof RolloutError ? toApiError(e) : e;
  }
}

const FormatQuery = z.object({ format: z.enum(['json', 'csv']).default('json') });

export function registerRolloutRoutes(
  table: RouteTable,
  ctx: ControlPlaneContext,
  deps: { service: RolloutService; store: RolloutStore; centralAccuracy: (modelId: string, version: number) => number | null; modelKnown: (modelId: string, version: number | null) => boolean },
): void {
  const { service, store } = deps;
  /**
   * GET /rollouts/:id: waves and per-state counts from the index, one page of devices, the newest events. Nothing in
   * it reads every device of the rollout (the rollout page polls it every 2 s; 10,000 devices is one rollout).
   */
  const view = (id: string, q: RolloutViewQuery = RolloutViewQuerySchema.parse({})) => {
    const r = store.get(id);
    if (!r) throw notFound('rollout', id);
    const counts = store.waveCounts(id);
    const deviceStates: Record<string, number> = {};
    let total = 0;
    let matching = 0;
    for (const c of counts) {
      deviceStates[c.state] = (deviceStates[c.state] ?? 0) + c.n;
      total += c.n;
      if ((q.state === undefined || c.state === q.state) && (q.wave === undefined || c.wave === q.wave)) matching += c.n;
    }
    const page = store.devicePage(id, { after: q.after ?? null, limit: q.limit, state: q.state ?? null, wave: q.wave ?? null });
    return {
      summary: rolloutSummary(r, total),
      waves: rolloutWaves(r, counts, (wave, measured) => store.waveMedianP50(id, wave, measured)),
      devices: page.rows.map(rolloutDeviceView),
      deviceStates,
      page: { limit: q.limit, matching, next: page.next ? rolloutDeviceCursor(page.next) : null },
      events: store.events(id, q.events),
    };
  };

  table.add({
    method: 'post',
    path: '/rollouts',
    tag: 'rollouts',
    summary: 'Roll a model version per profile out to the targeted devices, in waves behind gates',
    body: RolloutCreateSchema,
    response: RolloutViewSchema,
    status: 201,
    handler: async (c, { body }) => c.json(view((await domain(() => service.create(body))).id), 201),
  });
  table.add({
    method: 'get',
    path: '/rollouts',
    tag: 'rollouts',
    summary: 'List rollouts, newest first',
    response: RolloutListSchema,
    query: z.object({ state: z.enum(['running', 'paused', 'succeeded', 'aborted', 'rolled-back']).optional() }),
    handler: (c, { query }) => c.json({ items: store.list(query.state).map((r) => rolloutSummary(r, store.deviceCount(r.id))) }),
  });
  table.add({
    method: 'get',
    path: '/rollouts/:id',
    tag: 'rollouts',
    summary: 'One rollout: waves, device counts per state, gates, events, its devices a page at a time (?limit, ?after, ?state, ?wave)',
    response: RolloutViewSchema,
    query: RolloutViewQuerySchema,
    handler: (c, { params, query }) => c.json(view(params.id!, query)),
  });
  for (const action of ['pause', 'resume', 'abort', 'rollback'] as const) {
    table.add({
      method: 'post',
      path: `/rollouts/:id/${action}`,
      tag: 'rollouts',
      summary: { pause: 'Pause: nothing more is sent', resume: 'Resume a paused rollout', abort: 'Stop the rollout (rolls back if it is configured to)', rollback: 'Roll every device on the new model back to its previous one' }[action],
      response: RolloutViewSchema,
      handler: async (c, { params }) => {
        const id = params.id!;
        await domain(async () => {
          if (action === 'pause') service.pause(id);
          else if (action === 'resume') service.resume(id);
          else if (action === 'abort') await service.abort(id);
          else await service.rollback(id);
        });
        return c.json(view(id));
      },
    });
  }
  table.add({
    method: 'get',
    path: '/reports/rollouts/:id',
    tag: 'reports',
    summary: 'Rollout report: waves and per-device results (JSON, or ?format=csv for the devices)',
    query: FormatQuery,
    response: RolloutReportSchema,
    produces: ['text/csv'],
    handler: (c, { params, query }) => {
      const r = store.get(params.id!);
      if (!r) throw notFound('rollout', params.id!);
      const rep = rolloutReport(r, store.devices(r.id));
      if (query.format === 'csv') return c.body(toCsv(rep.devices), 200, { 'content-type': 'text/csv; charset=utf-8' });
      return c.json(rep);
    },
  });
  table.add({
    method: 'get',
    path: '/reports/models/:id',
    tag: 'reports',
    summary: "Model report per profile: devices' median p50/p90, memory, on-device vs central accuracy, int8-vs-fp32 speed-up (?format=csv)",
    response: ModelReportSchema,
    query: FormatQuery.extend({ version: decimalInt(1, 1_000_000_000).optional() }),
    produces: ['text/csv'],
    handler: (c, { params, query }) => {
      const rep = modelReport(ctx.db, params.id!, query.version ?? null, (v) => deps.centralAccuracy(params.id!, v));
      // a model the registry never held and no device measured is unknown, not an empty report (issue 8 item 12)
      if (rep.devices.length === 0 && !deps.modelKnown(params.id!, query.version ?? null)) throw notFound('model', query.version ? `${params.id!}@${query.version}` : params.id!);
      if (query.format === 'csv') return c.body(toCsv(rep.profiles), 200, { 'content-type': 'text/csv; charset=utf-8' });
      return c.json({ modelId: params.id, version: query.version ?? null, ...rep });
    },
  });
}
