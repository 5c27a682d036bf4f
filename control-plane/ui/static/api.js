// The dashboard's HTTP client: the same API the CLI uses, with the operator token from sessionStorage. Responses are
// read by the fields their schemas in shared/api/ name (documented in /openapi.json); no guessing at other shapes.

const KEY = 'edgefleet.token';
export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class Unauthorized extends Error {}
/** A route this control-plane build does not have (the app answers `no route ...`). */
export class NotAvailable extends Error {}
export class ApiError extends Error {
  /** details: for a 400, zod's issues ({path, message}), so a form can put each message next to its field. */
  constructor(status, message, details) { super(message); this.status = status; this.details = details; }
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  const token = session.get();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.ok) return data;
  const message = typeof data?.message === 'string' ? data.message : `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new Unauthorized(message);
  if (res.status === 404 && message.startsWith('no route ')) throw new NotAvailable(message);
  throw new ApiError(res.status, message, data?.details);
}

/** The route's data, or null when this build does not have the route. */
export async function optional(path) {
  try { return await api(path); } catch (e) { if (e instanceof NotAvailable) return null; throw e; }
}
