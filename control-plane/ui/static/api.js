// The dashboard's HTTP client: the same API the CLI uses, with the operator token from sessionStorage.

const KEY = 'edgefleet.token';
export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class Unauthorized extends Error {}
/** A route this control-plane build does not have yet (the app answers `no route ...`). */
export class NotAvailable extends Error {}
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
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
  const message = data?.message ?? `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new Unauthorized(message);
  if (res.status === 404 && typeof message === 'string' && message.startsWith('no route ')) throw new NotAvailable(message);
  throw new ApiError(res.status, message);
}

/** The route's data, or null when this build does not have it. */
export async function optional(path) {
  try { return await api(path); } catch (e) { if (e instanceof NotAvailable) return null; throw e; }
}

/** Loose reader for responses of areas still being built: the first present field wins ("a.b" walks objects). */
export function pick(o, ...keys) {
  for (const k of keys) {
    let v = o;
    for (const part of k.split('.')) v = v != null && typeof v === 'object' ? v[part] : undefined;
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

export const itemsOf = (body) => (Array.isArray(body) ? body : pick(body, 'items', 'data', 'results') ?? []);
