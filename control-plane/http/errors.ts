import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** The one error type routes throw on purpose; anything else renders as a 500 without internals. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) };
  }
}

export const notFound = (what: string, id: string): ApiError => new ApiError(404, 'not-found', `${what} "${id}" not found`);
