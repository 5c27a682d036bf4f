import { z } from 'zod';

/**
 * Response schemas of the control plane's HTTP API (what the routes answer; request schemas are in shared/http.ts and
 * beside their rooms). The dashboard and the CLI read only the fields named here. Objects are not strict: a route may
 * answer more than its schema names, but never less or of another type (tests check every answer).
 */

/** Every error answer: a machine code, a message for people, and for 400s the zod issues (path names the field). */
export const ApiErrorBodySchema = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
});

/** Epoch milliseconds. */
export const Millis = z.number().int();

/** A paginated list. */
export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), total: z.number().int().min(0), limit: z.number().int(), offset: z.number().int() });

export type ApiErrorBody = z.infer<typeof ApiErrorBodySchema>;
