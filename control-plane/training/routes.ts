import { TrainingJobListSchema, TrainingJobViewSchema } from '../../shared/api/models.ts';
import { TrainingJobCreateSchema, TrainingJobListQuerySchema } from '../../shared/registry.ts';
import { ApiError, notFound } from '../http/errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import type { SubmitResult, TrainingQueue } from './jobs.ts';

const created = (r: SubmitResult): SubmitResult & { success: true } => {
  if (!r.success) throw new ApiError(400, 'bad-request', `bad body: ${r.field}: ${r.message}`, [{ path: r.field.split('.'), message: r.message }]);
  return r;
};

export function registerTrainingRoutes(table: RouteTable, queue: TrainingQueue): void {
  table.add({
    method: 'post',
    path: '/training-jobs',
    tag: 'training',
    summary: 'Queue a distillation + QAT job: teacher, student, dataset, profiles (their recipes) and/or recipes, hyperparameters',
    body: TrainingJobCreateSchema,
    response: TrainingJobViewSchema,
    status: 201,
    handler: (c, { body }) => c.json(created(queue.submit(body)).job, 201),
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
      if (!r.success && r.field === 'state') throw new ApiError(409, 'conflict', r.message);
      return c.json(created(r).job, 201);
    },
  });
}
