import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { formatZodError } from '../../shared/messages.ts';
import { ApiError } from './errors.ts';

type Method = 'get' | 'post' | 'patch' | 'delete' | 'put';

export type RouteSpec<Q extends z.ZodType | undefined, B extends z.ZodType | undefined> = {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  /** Routes are guarded by the operator token unless marked public. */
  public?: boolean;
  query?: Q;
  body?: B;
  /** Response content types besides JSON (CSV reports, Prometheus text, HTML). */
  produces?: string[];
  handler: (
    c: Context,
    input: { query: Q extends z.ZodType ? z.infer<Q> : undefined; body: B extends z.ZodType ? z.infer<B> : undefined; params: Record<string, string> },
  ) => Response | Promise<Response>;
};

export type RegisteredRoute = { method: Method; path: string; summary: string; tag: string; public: boolean; query?: z.ZodType; body?: z.ZodType; produces?: string[] };

/**
 * Registers a route on hono and remembers its schemas, so the OpenAPI document is generated from
 * the same zod schemas that validate requests.
 */
export class RouteTable {
  readonly routes: RegisteredRoute[] = [];
  constructor(private readonly app: Hono) {}

  add<Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(spec: RouteSpec<Q, B>): void {
    const entry: RegisteredRoute = { method: spec.method, path: spec.path, summary: spec.summary, tag: spec.tag, public: spec.public ?? false };
    if (spec.query) entry.query = spec.query;
    if (spec.body) entry.body = spec.body;
    if (spec.produces) entry.produces = spec.produces;
    this.routes.push(entry);
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      let query: unknown;
      let body: unknown;
      if (spec.query) {
        const parsed = spec.query.safeParse(c.req.query());
        if (!parsed.success) throw new ApiError(400, 'bad-request', `bad query: ${formatZodError(parsed.error)}`, parsed.error.issues);
        query = parsed.data;
      }
      if (spec.body) {
        let raw: unknown;
        try {
          raw = await c.req.json();
        } catch {
          throw new ApiError(400, 'bad-request', 'body is not valid JSON');
        }
        const parsed = spec.body.safeParse(raw);
        if (!parsed.success) throw new ApiError(400, 'bad-request', `bad body: ${formatZodError(parsed.error)}`, parsed.error.issues);
        body = parsed.data;
      }
      return spec.handler(c, { query, body, params: c.req.param() } as never);
    });
  }
}

/** OpenAPI 3.1 from the route table (zod 4 renders JSON Schema itself). */
export function openApiDocument(routes: readonly RegisteredRoute[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const jsonSchema = (s: z.ZodType, io: 'input' | 'output'): unknown => {
    try {
      return z.toJSONSchema(s, { io, unrepresentable: 'any' });
    } catch {
      return {};
    }
  };
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const params = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      const js = jsonSchema(r.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema: schema as { type: string } });
      }
    }
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      parameters: params,
      responses: {
        '200': { description: 'OK', content: Object.fromEntries(['application/json', ...(r.produces ?? [])].map((t) => [t, {}])) },
        ...(r.body || r.query ? { '400': { description: 'Bad request: the message names the field' } } : {}),
        ...(r.public ? {} : { '401': { description: 'Missing or wrong operator token' } }),
      },
    };
    if (!r.public) op.security = [{ operatorToken: [] }];
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } };
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: { securitySchemes: { operatorToken: { type: 'http', scheme: 'bearer' } } },
  };
}
