import type { ControlPlaneContext } from '../context.ts';
import type { ControlPlaneExtension } from '../server.ts';
import { RolloutService, type RolloutPorts } from './rollout-service.ts';
import { ROLLOUT_MIGRATIONS, RolloutStore } from './rollout-store.ts';
import { registerRolloutRoutes } from './routes.ts';

export type RolloutsHandle = { service: () => RolloutService };

/**
 * Rollouts as a control-plane room. `ports(ctx)` connects it to the registry and to delivery; the
 * delivery room calls `service().onInstallState/onBenchmark` as reports arrive.
 */
export function createRolloutsExtension(opts: { ports: (ctx: ControlPlaneContext) => RolloutPorts; tickMs?: number }): ControlPlaneExtension & RolloutsHandle {
  let service: RolloutService | null = null;
  let store: RolloutStore | null = null;
  let timer: NodeJS.Timeout | null = null;
  let ports: RolloutPorts | null = null;
  return {
    migrations: { room: 'rollouts', list: ROLLOUT_MIGRATIONS },
    service: () => {
      if (!service) throw new Error('rollouts not started');
      return service;
    },
    hooks: () => ({ onBirth: (id) => void service?.onBirth(id).catch(() => {}) }),
    start: (ctx) => {
      store = new RolloutStore(ctx.db);
      ports = opts.ports(ctx);
      service = new RolloutService(store, ctx.devices, ports, ctx.log.child({ room: 'rollouts' }), ctx.now);
      const s = service;
      timer = setInterval(() => void s.tick().catch((e: unknown) => ctx.log.error('rollout tick failed', { error: String(e) })), opts.tickMs ?? 1000);
      timer.unref();
      void s.tick();
    },
    routes: (table, ctx) =>
      registerRolloutRoutes(table, ctx, {
        service: service!,
        store: store!,
        centralAccuracy: (modelId, version) => ports?.modelInfo({ modelId, version })?.centralAccuracy ?? null,
        modelKnown: (modelId, version) => ports?.modelKnown(modelId, version) ?? false,
      }),
    stop: () => {
      if (timer) clearInterval(timer);
      service?.stop();
    },
  };
}
