import { DeliveryCreatedSchema, DeviceInstallsSchema, TransferViewSchema } from '../../shared/api/delivery.ts';
import { DeliveryRequestSchema } from '../../shared/transfer.ts';
import type { ControlPlaneContext } from '../context.ts';
import { ApiError, notFound } from '../http/errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import { DeliveryError, type DeliveryService } from './delivery-service.ts';

const STATUS = { 'unknown-device': 404, 'bad-source': 400, 'no-profile': 409, 'bad-settings': 400 } as const;

export function registerDeliveryRoutes(table: RouteTable, ctx: ControlPlaneContext, service: DeliveryService): void {
  table.add({
    method: 'post',
    path: '/deliveries',
    tag: 'delivery',
    summary: 'Push a model (and its companions), by paths on the control plane, to one device: signs a manifest and sends deploy',
    body: DeliveryRequestSchema,
    response: DeliveryCreatedSchema,
    status: 202,
    handler: async (c, { body }) => {
      try {
        const d = await service.deliver(body.deviceId, body.source, {
          rolloutId: body.rolloutId,
          ...(body.chunkSize ? { chunkSize: body.chunkSize } : {}),
          ...(body.ttlSeconds ? { ttlMs: body.ttlSeconds * 1000 } : {}),
          ...(body.benchmark ? { benchmark: body.benchmark } : {}),
        });
        const m = d.manifest;
        return c.json(
          {
            deliveryId: d.deliveryId,
            deviceId: body.deviceId,
            model: { modelId: m.modelId, version: m.version },
            transferId: m.transferId,
            sizeBytes: m.sizeBytes,
            sha256: m.sha256,
            companions: m.companions.map((x) => ({ role: x.role, transferId: x.transferId, sizeBytes: x.sizeBytes })),
            expiresAt: m.expiresAt,
          },
          202,
        );
      } catch (e) {
        if (e instanceof DeliveryError) throw new ApiError(STATUS[e.code], e.code, e.message);
        throw e;
      }
    },
  });

  table.add({
    method: 'get',
    path: '/devices/:id/installs',
    tag: 'delivery',
    summary: "A device's model installs (latest state each), their state history and its benchmark reports",
    response: DeviceInstallsSchema,
    handler: (c, { params }) => {
      const id = params.id!;
      if (!ctx.devices.get(id)) throw notFound('device', id);
      return c.json({
        deviceId: id,
        installs: service.store.installs(id),
        history: service.store.events(id),
        benchmarks: service.store.benchmarks(id),
      });
    },
  });

  table.add({
    method: 'get',
    path: '/transfers/:id',
    tag: 'delivery',
    summary: 'A registered transfer: size, chunking, hashes, source path',
    response: TransferViewSchema,
    handler: (c, { params }) => {
      const t = service.store.transfer(params.id!);
      if (!t) throw notFound('transfer', params.id!);
      return c.json({ id: t.id, path: t.path, sizeBytes: t.sizeBytes, chunkSize: t.chunkSize, chunks: t.chunkSha256.length, sha256: t.sha256, chunkSha256: t.chunkSha256, createdAt: t.createdAt });
    },
  });
}
