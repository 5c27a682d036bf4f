import type { z } from 'zod';
import { formatZodError } from '../../shared/messages.ts';
import { CliError, EXIT } from './exit-codes.ts';

export type ApiClientOptions = { server: string; token: string | null; timeoutMs?: number; fetch?: typeof fetch };

/** A route this server build does not have answers 404 with `no route ...` (the app's notFound handler). */
export function isMissingRoute(e: unknown): boolean {
  return e instanceof ApiRequestError && e.status === 404 && e.code === 'not-found' && e.message.startsWith('no route ');
}

export class ApiRequestError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    exitCode: ConstructorParameters<typeof CliError>[0],
  ) {
    super(exitCode, message);
  }
}

/** Thin HTTP client over the control plane's API; every failure becomes a CliError with the documented exit code. */
export class ApiClient {
  readonly server: string;
  constructor(private readonly opts: ApiClientOptions) {
    this.server = opts.server.replace(/\/+$/, '');
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(this.server + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new CliError(EXIT.unreachable, `cannot reach the control plane at ${this.server} (${why}); is it running? Set --server or EDGEFLEET_SERVER`);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) {
      if (parsed === undefined) {
        if ((res.headers.get('content-type') ?? '').startsWith('text/')) return text as T;
        throw new CliError(EXIT.server, `${method} ${path}: the server answered ${res.status} with a body that is not JSON`);
      }
      return parsed as T;
    }
    const err = (parsed ?? {}) as { error?: string; message?: string };
    const code = typeof err.error === 'string' ? err.error : `http-${res.status}`;
    const message = typeof err.message === 'string' ? err.message : text.slice(0, 200) || res.statusText;
    if (res.status === 401 || res.status === 403) {
      const hint = this.opts.token ? 'the operator token was not accepted' : 'no operator token given';
      throw new ApiRequestError(res.status, code, `${hint} by ${this.server} (${message}); pass --token, set EDGEFLEET_TOKEN, or point --data-dir at the control plane's data folder`, EXIT.auth);
    }
    if (res.status === 404) throw new ApiRequestError(404, code, message, EXIT.notFound);
    if (res.status === 400 || res.status === 422) throw new ApiRequestError(res.status, code, `request refused: ${message}`, EXIT.usage);
    throw new ApiRequestError(res.status, code, `${method} ${path} failed with ${res.status}: ${message}`, EXIT.server);
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  post<T = unknown>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  patch<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  delete<T = unknown>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /**
   * A request whose answer is parsed with its response schema from shared/api/: the commands read typed fields, and
   * a server that answers another shape is named as such instead of printing undefined.
   */
  async typed<S extends z.ZodType>(schema: S, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown): Promise<z.infer<S>> {
    const raw = await this.request<unknown>(method, path, method === 'GET' ? undefined : (body ?? {}));
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new CliError(EXIT.server, `${method} ${path}: the server's answer is not the documented shape (${formatZodError(parsed.error)}); is the CLI older or newer than the control plane?`);
    return parsed.data;
  }
}

/** For areas other engineers are still building: a missing route becomes a clear "not available" error. */
export async function optionalRoute<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isMissingRoute(e)) throw new CliError(EXIT.notFound, `${what} is not available in this build of the control plane (${(e as Error).message})`);
    throw e;
  }
}
