import type { Logger } from '../log.ts';
import type { ControlPlaneExtension } from '../server.ts';
import { TrainingQueue, type ModelSink, type TrainingQueueOptions } from './jobs.ts';
import { TRAINING_MIGRATIONS, TrainingJobStore } from './jobs-store.ts';
import { createDatasetInspector, type InspectDataset } from './inspect-dataset.ts';
import { registerTrainingRoutes } from './routes.ts';
import { LONG_BUCKETS } from '../metrics.ts';

export { TrainingQueue, LOG_TAIL_LINES, type ModelSink, type SubmitResult } from './jobs.ts';
export { TRAINING_MIGRATIONS, TrainingJobStore, jobView } from './jobs-store.ts';
export { buildTrainerSpec, newJobId } from './jobs-spec.ts';
export { createDatasetInspector, type DatasetCheck, type InspectDataset } from './inspect-dataset.ts';

export type TrainingExtensionOptions = {
  /** The control plane's data folder: job outputs go to `<dataDir>/artifacts/jobs/<jobId>`. */
  dataDir: string;
  /** Where succeeded jobs register their models: `createRegistryExtension(...).registry`. */
  registry?: ModelSink | null;
  /** Trainers running at once; default $EDGEFLEET_TRAINING_CONCURRENCY or 1. */
  concurrency?: number;
  /** Interpreter with torch; default $EDGEFLEET_PYTHON or /usr/bin/python3. */
  python?: string;
  trainerScript?: string;
  killGraceMs?: number;
  progressPersistMs?: number;
  run?: TrainingQueueOptions['run'];
  /** The submit-time dataset check; default the trainer's inspect_dataset with the same interpreter; null: none. */
  inspectDataset?: InspectDataset | null;
};

export type TrainingExtension = ControlPlaneExtension & {
  /** The queue, once the control plane started (null before and after). */
  readonly queue: TrainingQueue | null;
};

export function createTrainingExtension(opts: TrainingExtensionOptions): TrainingExtension {
  let queue: TrainingQueue | null = null;
  let inspect: InspectDataset | null = null;
  let log: Logger | null = null;
  const envConcurrency = Number(process.env['EDGEFLEET_TRAINING_CONCURRENCY']);
  return {
    get queue() {
      return queue;
    },
    migrations: { room: 'training', list: TRAINING_MIGRATIONS },
    start: (ctx) => {
      const python = opts.python ?? process.env['EDGEFLEET_PYTHON'];
      inspect = opts.inspectDataset !== undefined ? opts.inspectDataset : createDatasetInspector(python !== undefined ? { python } : {});
      log = ctx.log.child({ room: 'training' });
      queue = new TrainingQueue({
        store: new TrainingJobStore(ctx.db),
        dataDir: opts.dataDir,
        concurrency: opts.concurrency ?? (Number.isInteger(envConcurrency) && envConcurrency > 0 ? envConcurrency : 1),
        ...(python !== undefined ? { python } : {}),
        ...(opts.trainerScript !== undefined ? { trainerScript: opts.trainerScript } : {}),
        ...(opts.killGraceMs !== undefined ? { killGraceMs: opts.killGraceMs } : {}),
        ...(opts.progressPersistMs !== undefined ? { progressPersistMs: opts.progressPersistMs } : {}),
        ...(opts.run !== undefined ? { run: opts.run } : {}),
        registry: opts.registry ?? null,
        profiles: () => ctx.profiles,
        log: ctx.log.child({ room: 'training' }),
        now: ctx.now,
        onPhaseEnd: (phase, seconds) => ctx.metrics.observe('edgefleet_training_phase_duration_seconds', 'Training phase duration (teacher, distill, qat per recipe, export, ...), by phase', { phase }, seconds, LONG_BUCKETS),
      });
      queue.start();
    },
    routes: (table) => {
      const q = queue;
      if (!q) throw new Error('training extension: routes before start');
      if (!log) throw new Error('training extension: routes before start');
      registerTrainingRoutes(table, q, inspect, log);
    },
    stop: async () => {
      await queue?.stop();
      queue = null;
    },
  };
}
