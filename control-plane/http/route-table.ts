import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { formatZodError } from '../../shared/messages.ts';
import { ApiErrorBodySchema } from '../../shared/api/common.ts';
import { ApiError } from './errors.ts';
import { checkPathParams } from './request-guards.ts';

type Method = 'get' | 'post' | 'patch' | 'delete' | 'put';
type SuccessStatus = 200 | 201 | 202;

export type RouteSpec<Q extends z.ZodType | undefined, B extends z.ZodType | undefined> = {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  /** Routes are guarded by the operator token unless marked public. */
  public?: boolean;
  query?: Q;
  body?: B;
  /**
   * The JSON body of the success answer, a zod schema from shared/api/. It is the contract the dashboard and the CLI
   * read: documented in /openapi.json and checked on every answer while tests run (see `checkResponses`).
   */
  response?: z.ZodType;
  /** The success status when it is not 200 (201 created, 202 accepted). */
  status?: SuccessStatus;
  /** Response content types besides JSON (CSV reports, Prometheus text, HTML). */
  produces?: string[];
  handler: (
    c: Context,
    input: { query: Q extends z.ZodType ? z.infer<Q> : undefined; body: B extends z.ZodType ? z.infer<B> : undefined; params: Record<string, string> },
  ) => Response | Promise<Response>;
};

export type RegisteredRoute = {
  method: Method;
  path: string;
  summary: string;
  tag: string;
  public: boolean;
  query?: z.ZodType;
  body?: z.ZodType;
  response?: z.ZodType;
  status?: SuccessStatus;
  produces?: string[];
};

/** A success answer that did not match its declared schema (tests assert there are none). */
export type ResponseViolation = { method: string; path: string; status: number; problem: string };

/**
 * Response checking is on under `node --test` (NODE_TEST_CONTEXT is set in every test process) and with
 * EDGEFLEET_CHECK_RESPONSES=1; EDGEFLEET_CHECK_RESPONSES=0 turns it off. In production it costs a JSON parse per
 * answer, so it stays off there.
 */
export function responseCheckingDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.EDGEFLEET_CHECK_RESPONSES === '0') return false;
  return env.EDGEFLEET_CHECK_RESPONSES === '1' || env.NODE_TEST_CONTEXT !== undefined;
}

/**
 * Registers a route on hono and remembers its schemas, so the OpenAPI document is generated from
 * the same zod schemas that validate requests and (in tests) responses.
 */
export class RouteTable {
  readonly routes: RegisteredRoute[] = [];
  readonly violations: ResponseViolation[] = [];
  private readonly checkResponses: boolean;

  constructor(
    private readonly app: Hono,
    opts: { checkResponses?: boolean } = {},
  ) {
    this.checkResponses = opts.checkResponses ?? responseCheckingDefault();
  }

  add<Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(spec: RouteSpec<Q, B>): void {
    const entry: RegisteredRoute = { method: spec.method, path: spec.path, summary: spec.summary, tag: spec.tag, public: spec.public ?? false };
    if (spec.query) entry.query = spec.query;
    if (spec.body) entry.body = spec.body;
    if (spec.response) entry.response = spec.response;
    if (spec.status) entry.status = spec.status;
    if (spec.produces) entry.produces = spec.produces;
    this.routes.push(entry);
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      checkPathParams(spec.path, c.req.param());
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
      const res = await spec.handler(c, { query, body, params: c.req.param() } as never);
      if (this.checkResponses && spec.response) await this.check(spec, c.req.path, res);
      return res;
    });
  }

  /** A 2xx JSON answer must parse with the route's schema; a mismatch is a bug in the route or the schema: 500. */
  private async check(spec: RouteSpec<z.ZodType | undefined, z.ZodType | undefined>, path: string, res: Response): Promise<void> {
    if (!res.ok || !(res.headers.get('content-type') ?? '').includes('application/json')) return;
    let problem: string | null = null;
    try {
      const parsed = spec.response!.safeParse(await res.clone().json());
      if (!parsed.success) problem = formatZodError(parsed.error);
    } catch (e) {
      problem = `not JSON: ${String(e)}`;
    }
    if (spec.status && res.status !== spec.status) problem = `status ${res.status}, declared ${spec.status}`;
    if (problem === null) return;
    this.violations.push({ method: spec.method.toUpperCase(), path, status: res.status, problem });
    throw new ApiError(500, 'response-schema', `the answer of ${spec.method.toUpperCase()} ${spec.path} does not match its response schema: ${problem}`);
  }
}

const jsonSchema = (s: z.ZodType, io: 'input' | 'output'): unknown => {
  try {
    return z.toJSONSchema(s, { io, unrepresentable: 'any' });
  } catch {
    return {};
  }
};

const ERROR_DESCRIPTIONS: Record<string, string> = {
  '400': 'Bad request: the message (and details[].path) names the field',
  '401': 'Missing or wrong operator token',
  '404': 'Not found',
  '409': 'Conflict with the current state',
};

/** OpenAPI 3.1 from the route table (zod 4 renders JSON Schema itself), responses included. */
export function openApiDocument(routes: readonly RegisteredRoute[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errorRef = { $ref: '#/components/schemas/Error' };
  const error = (code: string) => ({ description: ERROR_DESCRIPTIONS[code], content: { 'application/json': { schema: errorRef } } });
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const params = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      const js = jsonSchema(r.query, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) {
        params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema: schema as { type: string } });
      }
    }
    const content: Record<string, unknown> = {};
    if (r.response) content['application/json'] = { schema: jsonSchema(r.response, 'output') };
    for (const t of r.produces ?? []) content[t] = {};
    if (!r.response && !r.produces) content['application/json'] = {};
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      parameters: params,
      responses: {
        [String(r.status ?? 200)]: { description: r.status === 201 ? 'Created' : r.status === 202 ? 'Accepted' : 'OK', content },
        ...(r.body || r.query || params.length ? { '400': error('400') } : {}),
        ...(r.public ? {} : { '401': error('401') }),
        ...(params.some((p) => p.in === 'path') ? { '404': error('404') } : {}),
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
    components: { securitySchemes: { operatorToken: { type: 'http', scheme: 'bearer' } }, schemas: { Error: jsonSchema(ApiErrorBodySchema, 'output') } },
  };
}
