import { TuningListResponseSchema, TuningReportResponseSchema, TuningResponseSchema } from '../../shared/api/tuning.ts';
import { TuningCreateSchema, TuningListQuerySchema, TuningReportQuerySchema } from '../../shared/tuning.ts';
import { ApiError } from '../http/errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import { toCsv } from '../rollouts/reports.ts';
import { tuningReportRows } from './report.ts';
import { TuningError, type TuningService } from './tuning-service.ts';
import { RolloutError } from '../rollouts/errors.ts';
import { toApiError as rolloutApiError } from '../rollouts/routes.ts';

const STATUS = { 'bad-request': 400, 'not-found': 404, conflict: 409 } as const;

/** Domain errors become HTTP here, and only here. */
async function http<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TuningError) throw new ApiError(STATUS[e.code], e.code, e.message);
    // approve starts a rollout: its refusals (a model the rollouts room will not ship) are the caller's, not a 500
    if (e instanceof RolloutError) throw rolloutApiError(e);
    throw e;
  }
}

export function registerTuningRoutes(table: RouteTable, service: () => TuningService): void {
  table.add({
    method: 'post',
    path: '/tunings',
    tag: 'tuning',
    summary: 'Start a tuning: train (or take) candidates per profile, measure them on canary devices, pick by the objective under the constraints',
    body: TuningCreateSchema,
    response: TuningResponseSchema,
    status: 201,
    handler: async (c, { body }) => c.json(await http(() => service().create(body)), 201),
  });
  table.add({
    method: 'get',
    path: '/tunings',
    tag: 'tuning',
    summary: 'List tunings, newest first',
    query: TuningListQuerySchema,
    response: TuningListResponseSchema,
    handler: (c, { query }) => {
      const { items, total } = service().list({ limit: query.limit, offset: query.offset, ...(query.state ? { state: query.state } : {}) });
      return c.json({ items, total, limit: query.limit, offset: query.offset });
    },
  });
  table.add({
    method: 'get',
    path: '/tunings/:id',
    tag: 'tuning',
    summary: 'One tuning: state, every candidate with each canary\'s measurements, the per-profile decisions with their evidence, what is missing',
    response: TuningResponseSchema,
    handler: (c, { params }) => {
      const v = service().view(params.id!);
      if (!v) throw new ApiError(404, 'not-found', `tuning "${params.id}" not found`);
      return c.json(v);
    },
  });
  table.add({
    method: 'post',
    path: '/tunings/:id/approve',
    tag: 'tuning',
    summary: 'Roll out the measured choices of a decided tuning (waves and gates as in POST /rollouts)',
    response: TuningResponseSchema,
    handler: async (c, { params }) => c.json(await http(() => service().approve(params.id!))),
  });
  table.add({
    method: 'post',
    path: '/tunings/:id/cancel',
    tag: 'tuning',
    summary: 'Cancel a running tuning (its training job too); evaluations not yet answered are dropped',
    response: TuningResponseSchema,
    handler: async (c, { params }) => c.json(await http(() => service().cancel(params.id!))),
  });
  table.add({
    method: 'get',
    path: '/reports/tunings/:id',
    tag: 'tuning',
    summary: 'Tuning report: the per-profile candidate table (PyTorch, runtime and worst-device accuracy, median p50/p90, memory, status, why) and the decisions; ?format=csv for the table',
    query: TuningReportQuerySchema,
    produces: ['text/csv'],
    response: TuningReportResponseSchema,
    handler: (c, { params, query }) => {
      const v = service().view(params.id!);
      if (!v) throw new ApiError(404, 'not-found', `tuning "${params.id}" not found`);
      const rows = tuningReportRows(v);
      if (query.format === 'csv') return c.body(toCsv(rows), 200, { 'content-type': 'text/csv; charset=utf-8' });
      return c.json({ tuning: { id: v.id, name: v.name, state: v.state, objective: v.objective, constraints: v.constraints, decisions: v.decisions, notes: v.notes }, rows });
    },
  });
}
