import { EvaluationReportSchema } from '../../shared/messages.ts';
import type { EvaluationSettings } from '../../shared/profile.ts';
import type { ControlPlaneContext } from '../context.ts';
import type { ControlPlaneExtension } from '../server.ts';
import { registerTuningRoutes } from './routes.ts';
import { TuningService, type TuningPorts } from './tuning-service.ts';
import { TUNING_MIGRATIONS, TuningStore } from './tuning-store.ts';

export { TuningService, TuningError, type TuningPorts } from './tuning-service.ts';
export { decideProfile, aggregate, paretoFront } from './decide.ts';

export type TuningExtensionOptions = {
  ports: (ctx: ControlPlaneContext) => TuningPorts;
  tickMs?: number;
  /** Merged over profiles' benchmark settings for evaluations (short runs on test benches). */
  benchmark?: Record<string, number | boolean>;
  /** Merged over profiles' idle gate. */
  idle?: Partial<EvaluationSettings>;
  /** See TuningServiceOptions.maxConcurrentEvaluations. */
  maxConcurrentEvaluations?: number;
};

export type TuningExtension = ControlPlaneExtension & { service: () => TuningService };

/** Tuning as a control-plane room: its tables, routes, a tick, and the `evaluation` reports of the canaries. */
export function createTuningExtension(opts: TuningExtensionOptions): TuningExtension {
  let service: TuningService | null = null;
  let timer: NodeJS.Timeout | null = null;
  const get = (): TuningService => {
    if (!service) throw new Error('tuning not started');
    return service;
  };
  return {
    service: get,
    migrations: { room: 'tuning', list: TUNING_MIGRATIONS },
    hooks: () => ({
      onBirth: (deviceId) => service?.onBirth(deviceId),
      onReport: (deviceId, r) => {
        if (r.kind !== 'evaluation') return;
        const parsed = EvaluationReportSchema.safeParse(r);
        if (parsed.success) service?.onReport(deviceId, parsed.data);
      },
    }),
    start: (ctx) => {
      service = new TuningService({
        store: new TuningStore(ctx.db),
        devices: ctx.devices,
        profiles: ctx.profiles,
        ports: opts.ports(ctx),
        log: ctx.log.child({ room: 'tuning' }),
        metrics: ctx.metrics,
        now: ctx.now,
        ...(opts.benchmark ? { benchmark: opts.benchmark } : {}),
        ...(opts.idle ? { idle: opts.idle } : {}),
        ...(opts.maxConcurrentEvaluations !== undefined ? { maxConcurrentEvaluations: opts.maxConcurrentEvaluations } : {}),
      });
      service.resume();
      const s = service;
      timer = setInterval(() => void s.tick().catch((e: unknown) => ctx.log.error('tuning tick failed', { error: String(e) })), opts.tickMs ?? 1000);
      timer.unref();
    },
    routes: (table) => registerTuningRoutes(table, get),
    stop: () => {
      if (timer) clearInterval(timer);
      timer = null;
      service?.stop();
      service = null;
    },
  };
}
