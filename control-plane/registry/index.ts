import { z } from 'zod';
import type { ControlPlaneExtension } from '../server.ts';
import { ModelRegistry } from './model-registry.ts';
import { REGISTRY_MIGRATIONS } from './registry-store.ts';
import { registerRegistryRoutes } from './routes.ts';
import { DEFAULT_RUNTIME_AGREEMENT_THRESHOLD } from './runtime-eval.ts';

export { ModelRegistry, RegistryInputError, RegistryIntegrityError, centralAccuracy, hashFile, modelIdFor, toDeliverySource, type JobArtifacts, type VerifiedFile } from './model-registry.ts';
export { REGISTRY_MIGRATIONS } from './registry-store.ts';

export type RegistryExtensionOptions = {
  /** The control plane's data folder: versions live in `<dataDir>/registry/<id>/<version>/`. */
  dataDir: string;
  /** Flag models whose onnxruntime top-1 agrees with PyTorch's below this; default $EDGEFLEET_RUNTIME_AGREEMENT_THRESHOLD, else 0.99. */
  runtimeAgreementThreshold?: number;
};

const ThresholdSchema = z.coerce.number().min(0).max(1);

/** The threshold from the option, else the env var (a bad value is an error naming it), else the default. */
function threshold(opt: number | undefined): number {
  if (opt !== undefined) return ThresholdSchema.parse(opt);
  const env = process.env['EDGEFLEET_RUNTIME_AGREEMENT_THRESHOLD'];
  if (env === undefined || env === '') return DEFAULT_RUNTIME_AGREEMENT_THRESHOLD;
  const parsed = ThresholdSchema.safeParse(env);
  if (!parsed.success) throw new Error(`EDGEFLEET_RUNTIME_AGREEMENT_THRESHOLD: "${env}" is not a number in 0..1`);
  return parsed.data;
}

/** The registry room as a control-plane extension; `registry` is the service other rooms call once the control plane started. */
export type RegistryExtension = ControlPlaneExtension & { readonly registry: ModelRegistry };

export function createRegistryExtension(opts: RegistryExtensionOptions): RegistryExtension {
  const registry = new ModelRegistry(opts.dataDir);
  const runtimeAgreementThreshold = threshold(opts.runtimeAgreementThreshold);
  return {
    registry,
    migrations: { room: 'registry', list: REGISTRY_MIGRATIONS },
    start: (ctx) => {
      registry.attach({ db: ctx.db, signingKeys: ctx.signingKeys, profiles: ctx.profiles, log: ctx.log.child({ room: 'registry' }), now: ctx.now, runtimeAgreementThreshold });
    },
    routes: (table) => registerRegistryRoutes(table, registry),
    stop: () => registry.detach(),
  };
}
