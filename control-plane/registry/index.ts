import type { ControlPlaneExtension } from '../server.ts';
import { ModelRegistry } from './model-registry.ts';
import { REGISTRY_MIGRATIONS } from './registry-store.ts';
import { registerRegistryRoutes } from './routes.ts';

export { ModelRegistry, RegistryInputError, RegistryIntegrityError, centralAccuracy, hashFile, modelIdFor, toDeliverySource, type JobArtifacts, type VerifiedFile } from './model-registry.ts';
export { REGISTRY_MIGRATIONS } from './registry-store.ts';

export type RegistryExtensionOptions = {
  /** The control plane's data folder: versions live in `<dataDir>/registry/<id>/<version>/`. */
  dataDir: string;
};

/** The registry room as a control-plane extension; `registry` is the service other rooms call once the control plane started. */
export type RegistryExtension = ControlPlaneExtension & { readonly registry: ModelRegistry };

export function createRegistryExtension(opts: RegistryExtensionOptions): RegistryExtension {
  const registry = new ModelRegistry(opts.dataDir);
  return {
    registry,
    migrations: { room: 'registry', list: REGISTRY_MIGRATIONS },
    start: (ctx) => {
      registry.attach({ db: ctx.db, signingKeys: ctx.signingKeys, profiles: ctx.profiles, log: ctx.log.child({ room: 'registry' }), now: ctx.now });
    },
    routes: (table) => registerRegistryRoutes(table, registry),
    stop: () => registry.detach(),
  };
}
