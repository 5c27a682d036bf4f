/**
 * The one result shape for expected failures across the code base (parsers, loaders, runners):
 * `{ ok: true, value } | { ok: false, error }`. zod's own `safeParse` results stay zod's, read once
 * at the boundary and turned into this shape where they leave it.
 */
export type Result<T, E = string> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** An expected failure that names the request field it concerns (routes turn it into a 400 naming the field). */
export type FieldError = { field: string; message: string };
