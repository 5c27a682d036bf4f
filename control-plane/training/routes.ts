import { TrainingJobCreatedSchema, TrainingJobListSchema, TrainingJobViewSchema } from '../../shared/api/models.ts';
import { TrainingJobCreateSchema, TrainingJobListQuerySchema, type TrainingJobView } from '../../shared/registry.ts';
import { ApiError, notFound } from '../http/errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import type { Logger } from '../log.ts';
import type { InspectDataset } from './inspect-dataset.ts';
import type { SubmitResult, TrainingQueue } from './jobs.ts';

const created = (r: SubmitResult): TrainingJobView => {
  if (!r.ok) throw new ApiError(400, 'bad-request', `bad body: ${r.error.field}: ${r.error.message}`, [{ path: r.error.field.split('.'), message: r.error.message }]);
  return r.value;
};

export function registerTrainingRoutes(table: RouteTable, queue: TrainingQueue, inspect: InspectDataset | null, log: Logger): void {
  table.add({
    method: 'post',
    path: '/training-jobs',
    tag: 'training',
    summary:
      "Queue a distillation + QAT job: teacher, student, dataset, profiles (their recipes) and/or recipes, hyperparameters. The dataset is checked first (exists, readable, format, shapes, labels): a 400 names the field; the answer carries the dataset's summary",
    body: TrainingJobCreateSchema,
    response: TrainingJobCreatedSchema,
    status: 201,
    handler: async (c, { body }) => {
      // fail early: a missing file or a CSV sent as NPZ is the caller's to fix now, not twenty minutes later
      const check = inspect ? await inspect(body.dataset) : null;
      if (check && !check.ok && check.kind === 'bad-dataset') {
        throw new ApiError(400, 'bad-request', `bad body: ${check.field}: ${check.message}`, [{ path: check.field.split('.'), message: check.message }]);
      }
      if (check && !check.ok) log.warn('dataset check unavailable; queued unchecked', { reason: check.message });
      const job = created(queue.submit(body));
      return c.json({ ...job, datasetSummary: check?.ok ? check.value : null }, 201);
    },
  });

  table.add({
    method: 'get',
    path: '/training-jobs',
    tag: 'training',
    summary: 'List training jobs, newest first, filtered by state, paginated',
    query: TrainingJobListQuerySchema,
    response: TrainingJobListSchema,
    handler: (c, { query }) => {
      const { items, total } = queue.list({ limit: query.limit, offset: query.offset, ...(query.state ? { state: query.state } : {}) });
      return c.json({ items, total, limit: query.limit, offset: query.offset });
    },
  });

  table.add({
    method: 'get',
    path: '/training-jobs/:id',
    tag: 'training',
    summary: "One job: state, live progress (phase, epoch, step, loss, accuracy, lr, eta), metrics, the trainer's last 50 log lines, error, registered models",
    response: TrainingJobViewSchema,
    handler: (c, { params }) => {
      const j = queue.view(params.id!);
      if (!j) throw notFound('training job', params.id!);
      return c.json(j);
    },
  });

  table.add({
    method: 'post',
    path: '/training-jobs/:id/cancel',
    tag: 'training',
    summary: 'Cancel a queued job, or stop a running one (SIGTERM, then SIGKILL); answers once the job has ended',
    response: TrainingJobViewSchema,
    handler: async (c, { params }) => {
      const r = await queue.cancel(params.id!);
      if (r === null) throw notFound('training job', params.id!);
      if (r === 'ended') throw new ApiError(409, 'conflict', `training job "${params.id}" has already ended (${queue.view(params.id!)?.state})`);
      return c.json(r);
    },
  });

  table.add({
    method: 'post',
    path: '/training-jobs/:id/retry',
    tag: 'training',
    summary: 'Queue a new job with the same request as an ended one (an interrupted job, typically)',
    response: TrainingJobViewSchema,
    status: 201,
    handler: (c, { params }) => {
      const r = queue.retry(params.id!);
      if (r === null) throw notFound('training job', params.id!);
      if (!r.ok && r.error.field === 'state') throw new ApiError(409, 'conflict', r.error.message);
      return c.json(created(r), 201);
    },
  });
}
