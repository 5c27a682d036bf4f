import { BrokerUnavailableError } from '../broker/broker-access.ts';
import { Hono } from 'hono';
import { timingSafeEqual } from 'node:crypto';
import type { ControlPlaneContext } from '../context.ts';
import { HealthSchema, OpenApiSchema, SigningKeySchema } from '../../shared/api/fleet.ts';
import { ApiError } from './errors.ts';
import { HTTP_BODY_LIMIT_BYTES, limitBody, requireJsonBody } from './request-guards.ts';
import { RouteTable, openApiDocument } from './route-table.ts';
import { securityHeaders } from './security-headers.ts';
import { registerDeviceRoutes } from './devices-routes.ts';
import { registerFleetRoutes } from './fleet-routes.ts';

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export type HttpApp = { app: Hono; table: RouteTable };

/** The control plane's HTTP API. Extra route groups (training, models, rollouts, UI) register through `extend`. */
export function createHttpApp(ctx: ControlPlaneContext, extend: ((table: RouteTable, ctx: ControlPlaneContext) => void)[] = []): HttpApp {
  const app = new Hono();
  const table = new RouteTable(app);
  const publicPaths = new Set<string>();

  // first, so every answer carries them: API, dashboard, docs, 401s, 404s and errors
  app.use('*', securityHeaders());

  const latency = ctx.metrics.histogram('edgefleet_http_request_duration_seconds', 'HTTP request latency, by method, route (the route pattern, e.g. /devices/:id) and status', ['method', 'route', 'status']);
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    ctx.metrics.inc('edgefleet_http_requests_total', 'HTTP requests, by method and status', { method: c.req.method, status: String(c.res.status) });
    // after next() the route path is the matched route's pattern ('*' when none matched): bounded label values
    latency.observe({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) }, (performance.now() - started) / 1000);
    if (c.res.status >= 500) ctx.log.error('http request failed', { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) });
  });

  // size and type before anything reads a body (issue 8 item 6); refused bodies are counted, not logged one by one
  const refusedBody = (reason: string): void => ctx.metrics.inc('edgefleet_http_bodies_refused_total', 'HTTP request bodies refused, by reason', { reason });
  app.use('*', limitBody(HTTP_BODY_LIMIT_BYTES, refusedBody));
  app.use('*', requireJsonBody(refusedBody));

  app.use('*', async (c, next) => {
    if (publicPaths.has(c.req.path) || c.req.path.startsWith('/ui/') || c.req.path === '/') return next();
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer (.+)$/i.exec(header);
    if (!m || !tokenMatches(m[1]!, ctx.operatorToken)) {
      ctx.metrics.inc('edgefleet_http_unauthorized_total', 'HTTP requests refused for a missing or wrong operator token');
      throw new ApiError(401, 'unauthorized', m ? 'operator token not accepted' : 'missing "Authorization: Bearer <operator token>" header');
    }
    return next();
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      if (err.status === 400) {
        ctx.metrics.inc('edgefleet_http_bad_requests_total', 'HTTP requests refused as malformed, by route', { route: c.req.routePath });
        ctx.log.warn('bad request', { method: c.req.method, path: c.req.path, reason: err.message });
      }
      return c.json(err.toJSON(), err.status);
    }
    if (err instanceof BrokerUnavailableError) {
      ctx.metrics.inc('edgefleet_http_broker_unavailable_total', 'HTTP requests answered 503 because the broker could not be reached', { route: c.req.routePath });
      return c.json({ error: 'broker-unavailable', message: err.message }, 503);
    }
    ctx.log.error('unhandled error in route', { path: c.req.path, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    return c.json({ error: 'internal', message: 'internal error; see the control-plane log' }, 500);
  });
  app.notFound((c) => c.json({ error: 'not-found', message: `no route ${c.req.method} ${c.req.path}` }, 404));

  table.add({
    method: 'get',
    path: '/healthz',
    tag: 'system',
    summary: 'Liveness and readiness: database and broker session',
    public: true,
    response: HealthSchema,
    handler: (c) => {
      const dbOk = ctx.db.prepare('SELECT 1 AS ok').get() !== undefined;
      const mqttOk = ctx.fleet.mqtt?.connected ?? false;
      return c.json({ ok: dbOk && mqttOk, db: dbOk, mqtt: mqttOk, broker: ctx.broker.kind, version: ctx.version }, dbOk && mqttOk ? 200 : 503);
    },
  });

  table.add({
    method: 'get',
    path: '/keys/model-signing',
    tag: 'system',
    summary: "The control plane's ed25519 public key that signs model manifests",
    response: SigningKeySchema,
    handler: (c) => c.json({ algorithm: 'ed25519', publicKeyPem: ctx.signingKeys.publicKeyPem }),
  });

  registerDeviceRoutes(table, ctx);
  registerFleetRoutes(table, ctx);
  for (const fn of extend) fn(table, ctx);

  table.add({
    method: 'get',
    path: '/openapi.json',
    tag: 'system',
    summary: 'This API, as OpenAPI 3.1 generated from the validating zod schemas',
    public: true,
    response: OpenApiSchema,
    handler: (c) => c.json(openApiDocument(table.routes, { title: 'EdgeFleet control plane', version: ctx.version })),
  });
  // every route the table marks public (health, the API description, the docs page) skips the token
  for (const r of table.routes) if (r.public && !r.path.includes(':')) publicPaths.add(r.path);

  return { app, table };
}
