import type { ControlPlaneExtension } from '../server.ts';
import { DeliveryService } from './delivery-service.ts';
import { DELIVERY_MIGRATIONS } from './migrations.ts';
import { registerDeliveryRoutes } from './routes.ts';
import type { FrameFilter } from './transfer-server.ts';

export { DeliveryService, DeliveryError, type DeliverOptions, type Delivery, type InstallStateEvent, type BenchmarkEvent } from './delivery-service.ts';
export { DeliveryStore, type InstallRow, type BenchmarkRow, type TransferRow } from './delivery-store.ts';
export { TransferServer, transferIdFor, type RegisteredTransfer, type FrameFilter, type ServedStats, type PublishedStats } from './transfer-server.ts';

export type DeliveryExtensionOptions = {
  /** Test seam: sees each encoded chunk frame before it is published (corrupt one to test re-requests). */
  frameFilter?: FrameFilter;
  maxChunksInFlight?: number;
  /** Shared per-transfer data topic for waves (default true); false: every chunk on the per-device path. */
  fanout?: boolean;
  /** A fan-out wave ends after this long without a fan-out ask (default 30 s). */
  waveIdleMs?: number;
  /** A new wave waits this long at most for every offered device to join before its first publish (default 1 s). */
  gatherMs?: number;
};

/**
 * The delivery room as a control-plane extension, plus the service other rooms call (`deliver`, `registerTransfer`,
 * `onInstallState`, `onBenchmark`). One service survives control-plane restarts: each start rebinds it.
 */
export function createDeliveryExtension(opts: DeliveryExtensionOptions = {}): { extension: ControlPlaneExtension; service: DeliveryService } {
  const service = new DeliveryService(opts);
  const extension: ControlPlaneExtension = {
    migrations: { room: 'delivery', list: DELIVERY_MIGRATIONS },
    hooks: (ctx) => {
      service.bind(ctx);
      return {
        onReport: (deviceId, r) => service.ingestReport(deviceId, r),
        onXferRequest: (deviceId, req) => {
          void service.transfers.handleRequest(deviceId, req).catch((e: unknown) => ctx.log.error('transfer request failed', { deviceId, transferId: req.transferId, error: String(e) }));
        },
      };
    },
    start: (ctx) => service.bind(ctx),
    routes: (table, ctx) => registerDeliveryRoutes(table, ctx, service),
    stop: () => service.unbind(),
  };
  return { extension, service };
}
