import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { checkId, type IdKind } from '../../shared/ids.ts';
import { ApiError } from './errors.ts';

/**
 * Limits every request before a route sees it (issue 8 item 6): a 300 MB body used to be parsed whole.
 * The largest legitimate body (a training-job spec or a rollout with every profile) is a few KiB; 1 MiB leaves room.
 */
export const HTTP_BODY_LIMIT_BYTES = 1024 * 1024;

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** 413 for a body over the limit, counted by content-length up front or by bytes read for a chunked body. */
export function limitBody(maxBytes = HTTP_BODY_LIMIT_BYTES, onRefused?: (reason: string) => void): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      onRefused?.('too-large');
      throw new ApiError(413, 'payload-too-large', `request body over ${maxBytes} bytes`);
    },
  });
}

/** 415 for a body that is not `application/json` (every route of this API takes JSON, or no body). */
export function requireJsonBody(onRefused?: (reason: string) => void): MiddlewareHandler {
  return async (c, next) => {
    if (!BODY_METHODS.has(c.req.method)) return next();
    const length = c.req.header('content-length');
    const hasBody = c.req.header('transfer-encoding') !== undefined || (length !== undefined && length !== '0');
    if (!hasBody) return next();
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      onRefused?.('unsupported-media-type');
      throw new ApiError(415, 'unsupported-media-type', `request body must be application/json, got ${type ? JSON.stringify(type.slice(0, 100)) : 'no content-type'}`);
    }
    return next();
  };
}

/** Which id kind a path parameter names, from the collection before it (`/devices/:id` -> device). */
const PARAM_KINDS: Record<string, IdKind> = {
  devices: 'device',
  'enrollment-tokens': 'token',
  models: 'model',
  rollouts: 'rollout',
  transfers: 'transfer',
  deliveries: 'delivery',
  'training-jobs': 'job',
  tunings: 'tuning',
  profiles: 'profile',
};

/**
 * Every `:id`-like path parameter follows the one id rule, so no id that could not have been created reaches a store
 * or a file path; `:version` and other numbers are decimal integers only (`0x10` is not 16).
 */
export function checkPathParams(routePath: string, params: Record<string, string>): void {
  const segments = routePath.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    if (!seg.startsWith(':')) continue;
    const name = seg.slice(1);
    const value = params[name];
    if (value === undefined) continue;
    if (name === 'version') {
      if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new ApiError(400, 'bad-request', `bad path: version: ${JSON.stringify(value.slice(0, 40))} is not a positive decimal integer`);
      continue;
    }
    const kind = PARAM_KINDS[segments[i - 1]!];
    if (!kind) continue;
    const r = checkId(kind, value);
    if (!r.ok) throw new ApiError(400, 'bad-request', `bad path: ${name}: ${r.error}`);
  }
}
