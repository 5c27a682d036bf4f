import { recipeKernelWarning } from '../shared/kernels.ts';
import { PROTOCOL_VERSION, newMsgId } from '../shared/messages.ts';
import { RolloutCreateSchema } from '../shared/rollouts.ts';
import type { DeviceProfile } from '../shared/profile.ts';
import type { ModelVersion } from '../shared/registry.ts';
import type { Recipe } from '../shared/recipe.ts';
import { createDeliveryExtension, type DeliveryExtensionOptions, type DeliveryService } from './delivery/index.ts';
import { centralAccuracy, createRegistryExtension, type ModelRegistry } from './registry/index.ts';
import { createRolloutsExtension, type RolloutsHandle } from './rollouts/index.ts';
import type { ControlPlaneExtension } from './server.ts';
import { createTrainingExtension, type TrainingExtension } from './training/index.ts';
import { createTuningExtension, type TuningExtension } from './tuning/index.ts';
import { createUiExtension } from './ui/index.ts';

export type StandardRoomsOptions = {
  dataDir: string;
  delivery?: DeliveryExtensionOptions;
  /** Benchmark settings merged over the device profile's for rollout deliveries (short runs on test benches). */
  rolloutBenchmark?: Record<string, number | boolean>;
  rolloutTickMs?: number;
  /** Benchmark settings merged over the profile's for tuning evaluations, and the idle gate (test benches). */
  tuningBenchmark?: Record<string, number | boolean>;
  tuningIdle?: { maxLoadPerCore?: number; idleWaitSeconds?: number };
  tuningTickMs?: number;
  /** Evaluations in flight at once (simulated canaries sharing one host: 1). */
  tuningMaxConcurrentEvaluations?: number;
  training?: { concurrency?: number; python?: string };
  ui?: boolean;
};

export type StandardRooms = {
  extensions: ControlPlaneExtension[];
  registry: ModelRegistry;
  delivery: DeliveryService;
  rollouts: RolloutsHandle;
  training: TrainingExtension;
  tuning: TuningExtension;
};

/**
 * The rooms a full control plane runs, wired to each other: training registers into the registry,
 * rollouts resolve models in the registry and ship them through delivery, and delivery's device
 * reports drive the rollouts. `main.ts`, `edgefleet up` and the end-to-end tests all use this.
 */
export function createStandardRooms(opts: StandardRoomsOptions): StandardRooms {
  const registryExt = createRegistryExtension({ dataDir: opts.dataDir });
  const registry = registryExt.registry;
  const { extension: deliveryExt, service: delivery } = createDeliveryExtension(opts.delivery ?? {});
  const training = createTrainingExtension({ dataDir: opts.dataDir, registry, ...(opts.training ?? {}) });
  const rollouts = createRolloutsExtension({
    ...(opts.rolloutTickMs !== undefined ? { tickMs: opts.rolloutTickMs } : {}),
    ports: (ctx) => ({
      modelInfo: (ref) => {
        const m = registry.get(ref.modelId, ref.version);
        return m ? { profileId: m.profileId, centralAccuracy: centralAccuracy(m) } : null;
      },
      modelKnown: (modelId, version) => (version === null ? registry.versions(modelId).length > 0 : registry.get(modelId, version) !== null),
      deploy: async (deviceId, ref, profileId, rolloutId) => {
        // the registry re-checks hashes and signature: a tampered artifact never leaves
        const source = await registry.deliverySource(ref.modelId, ref.version, profileId);
        await delivery.deliver(deviceId, source, { rolloutId, ...(opts.rolloutBenchmark ? { benchmark: opts.rolloutBenchmark } : {}) });
      },
      rollback: (deviceId, rolloutId, to) => ctx.fleet.publishCommand(deviceId, { v: PROTOCOL_VERSION, msgId: newMsgId(), ts: ctx.now(), cmd: 'rollback', rolloutId, to }),
      kernelWarning: (ref) => {
        const m = registry.get(ref.modelId, ref.version);
        const recipe = m && m.kind === 'int8' ? modelRecipe(m, ctx.profiles) : null;
        if (!recipe) return null;
        return (facts) =>
          facts ? recipeKernelWarning(recipe, facts.arch, facts.cpu.flags, facts.cpu.brand ? `the device's CPU (${[facts.cpu.manufacturer, facts.cpu.brand].filter(Boolean).join(' ')})` : "the device's CPU") : null;
      },
      p50On: (deviceId, ref) => delivery.store.latestP50(deviceId, ref.modelId, ref.version),
    }),
  });
  delivery.onInstallState((deviceId, model, state, reason, rolloutId) => void rollouts.service().onInstallState(deviceId, model, state, reason, rolloutId).catch(() => {}));
  delivery.onBenchmark((e) => void rollouts.service().onBenchmark(e.deviceId, e.model, e.result, e.baseline, e.rolloutId).catch(() => {}));
  const tuning = createTuningExtension({
    ...(opts.tuningTickMs !== undefined ? { tickMs: opts.tuningTickMs } : {}),
    ...(opts.tuningBenchmark ? { benchmark: opts.tuningBenchmark } : {}),
    ...(opts.tuningIdle ? { idle: opts.tuningIdle } : {}),
    ...(opts.tuningMaxConcurrentEvaluations !== undefined ? { maxConcurrentEvaluations: opts.tuningMaxConcurrentEvaluations } : {}),
    ports: () => ({
      registry,
      delivery,
      training: {
        submit: (req) => training.queue!.submit(req),
        view: (id) => training.queue?.view(id) ?? null,
        retry: (id) => training.queue!.retry(id),
        cancel: (id) => training.queue!.cancel(id),
      },
      startRollout: (body) => rollouts.service().create(RolloutCreateSchema.parse(body)),
    }),
  });
  const gauges: ControlPlaneExtension = {
    start: (ctx) => {
      const byState = (table: string) => () =>
        (ctx.db.prepare(`SELECT state, COUNT(*) AS n FROM ${table} GROUP BY state`).all() as { state: string; n: number }[]).map((r) => ({ labels: { state: r.state }, value: r.n }));
      ctx.metrics.gauge('edgefleet_training_jobs', 'Training jobs by state', byState('training_jobs'));
      ctx.metrics.gauge('edgefleet_rollouts', 'Rollouts by state', byState('rollouts'));
      // open rollouts only: finished ones keep every device row forever, and a scrape must not read the history (counted
      // on the index rollout_devices_state: 10,000 open devices under 210,000 rows, 45 -> 1.7 ms)
      const openRolloutDevices = ctx.db.prepare(
        `SELECT state, COUNT(*) AS n FROM rollout_devices WHERE rollout_id IN (SELECT id FROM rollouts WHERE state IN ('running', 'paused')) GROUP BY state`,
      );
      ctx.metrics.gauge('edgefleet_rollout_devices', 'Devices of running and paused rollouts, by their state in the rollout', () =>
        (openRolloutDevices.all() as { state: string; n: number }[]).map((r) => ({ labels: { state: r.state }, value: r.n })),
      );
      ctx.metrics.gauge('edgefleet_model_versions', 'Registered model versions', () => [{ labels: {}, value: (ctx.db.prepare('SELECT COUNT(*) AS n FROM model_versions').get() as { n: number }).n }]);
    },
  };
  const extensions: ControlPlaneExtension[] = [registryExt, training, deliveryExt, rollouts, tuning, gauges];
  if (opts.ui !== false) extensions.push(createUiExtension());
  return { extensions, registry, delivery, rollouts, training, tuning };
}

/** A model version's recipe: from its training job's spec, else the profile whose recipe it names. */
function modelRecipe(m: ModelVersion, profiles: readonly DeviceProfile[]): Pick<Recipe, 'id' | 'reduceRange'> | null {
  if (!m.recipeId) return null;
  const fromSpec = (m.lineage.spec as { recipes?: { id?: unknown; reduceRange?: unknown }[] } | null)?.recipes?.find((r) => r.id === m.recipeId);
  if (fromSpec && typeof fromSpec.reduceRange === 'boolean') return { id: m.recipeId, reduceRange: fromSpec.reduceRange };
  return profiles.find((p) => p.recipe.id === m.recipeId)?.recipe ?? null;
}
