import { ModelGetSchema, ModelListSchema, ModelVersionSchema, VerifyReportSchema } from '../../shared/api/models.ts';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { decimalInt } from '../../shared/http.ts';
import { CompanionRole, ModelGetQuerySchema, ModelListQuerySchema, ModelRegisterSchema } from '../../shared/registry.ts';
import { ApiError, notFound } from '../http/errors.ts';
import type { RouteTable } from '../http/route-table.ts';
import { RegistryInputError, type ModelRegistry } from './model-registry.ts';

const versionParam = (v: string | undefined): number => {
  const n = decimalInt(1, 1_000_000_000).safeParse(v);
  if (!n.success) throw new ApiError(400, 'bad-request', `bad path: version: "${v}" is not a positive integer`);
  return n.data;
};

export function registerRegistryRoutes(table: RouteTable, registry: ModelRegistry): void {
  table.add({
    method: 'get',
    path: '/models',
    tag: 'models',
    summary: 'List model versions, newest first, filtered by profile, recipe, kind, role, job or name',
    query: ModelListQuerySchema,
    response: ModelListSchema,
    handler: (c, { query }) => {
      const { limit, offset, ...rest } = query;
      const filter = { limit, offset, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) };
      const { items, total } = registry.list(filter);
      return c.json({ items, total, limit, offset });
    },
  });

  table.add({
    method: 'post',
    path: '/models',
    tag: 'models',
    summary: 'Register a server-local ONNX file by hand (copied in, hashed, signed), with optional companions and central accuracy',
    body: ModelRegisterSchema,
    response: ModelVersionSchema,
    status: 201,
    handler: async (c, { body }) => {
      try {
        return c.json(await registry.registerFile(body), 201);
      } catch (e) {
        if (e instanceof RegistryInputError) throw new ApiError(400, 'bad-request', `bad body: ${e.field}: ${e.message}`, [{ path: e.field.split('.'), message: e.message }]);
        throw e;
      }
    },
  });

  table.add({
    method: 'get',
    path: '/models/:id',
    tag: 'models',
    summary: 'One model: all its versions (newest first), or one with ?version=',
    query: ModelGetQuerySchema,
    response: ModelGetSchema,
    handler: (c, { params, query }) => {
      const id = params.id!;
      if (query.version !== undefined) {
        const m = registry.get(id, query.version);
        if (!m) throw notFound('model version', `${id} v${query.version}`);
        return c.json(m);
      }
      const versions = registry.versions(id);
      if (versions.length === 0) throw notFound('model', id);
      const latest = versions[0]!;
      return c.json({ id, name: latest.name, profileId: latest.profileId, recipeId: latest.recipeId, kind: latest.kind, role: latest.role, latestVersion: latest.version, versions });
    },
  });

  const serve = async (id: string, version: number, companion?: CompanionRole): Promise<Response> => {
    const f = await registry.openVerified(id, version, companion);
    if (!f) throw notFound('model version', `${id} v${version}`);
    if (!f.ok) throw new ApiError(409, 'integrity-failure', `refusing to serve ${id} v${version}: ${f.error}; see GET /models/${id}/versions/${version}/verify`);
    const name = companion === undefined ? `${id}-v${version}.onnx` : `${id}-v${version}-${companion}.bin`;
    const headers = {
      'content-type': 'application/octet-stream',
      'content-length': String(f.value.size),
      'content-disposition': `attachment; filename="${name}"`,
      'x-edgefleet-sha256': f.value.sha256,
      'repr-digest': `sha-256=:${Buffer.from(f.value.sha256, 'hex').toString('base64')}:`,
    };
    const body = f.value.bytes ? new Uint8Array(f.value.bytes) : (Readable.toWeb(createReadStream(f.value.path)) as ReadableStream<Uint8Array>);
    return new Response(body, { status: 200, headers });
  };

  table.add({
    method: 'get',
    path: '/models/:id/versions/:version/artifact',
    tag: 'models',
    summary: 'Download the ONNX file (X-EdgeFleet-SHA256 header); refused with 409 when the file on disk no longer matches its hash',
    produces: ['application/octet-stream'],
    handler: (_c, { params }) => serve(params.id!, versionParam(params.version)),
  });

  table.add({
    method: 'get',
    path: '/models/:id/versions/:version/companions/:role',
    tag: 'models',
    summary: 'Download a companion file (evalset, reference-predictions, fp32-baseline), hash-checked like the artifact',
    produces: ['application/octet-stream'],
    handler: (_c, { params }) => {
      const role = CompanionRole.safeParse(params.role);
      if (!role.success) throw new ApiError(400, 'bad-request', `bad path: role: "${params.role}" is not one of ${CompanionRole.options.join(', ')}`);
      return serve(params.id!, versionParam(params.version), role.data);
    },
  });

  table.add({
    method: 'get',
    path: '/models/:id/versions/:version/verify',
    tag: 'models',
    summary: "Recompute the file's and companions' sha256 and check the ed25519 signature; reports what changed",
    response: VerifyReportSchema,
    handler: async (c, { params }) => {
      const version = versionParam(params.version);
      const r = await registry.verify(params.id!, version);
      if (!r) throw notFound('model version', `${params.id} v${version}`);
      return c.json(r);
    },
  });
}
