import { esc } from './charts.js';
export { esc };

export const ago = (ts) => {
  if (ts == null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : s < 86400 ? `${Math.floor(s / 3600)}h ago` : `${Math.floor(s / 86400)}d ago`;
};
export const when = (ts) => (ts == null ? '' : new Date(ts).toLocaleString());
export const num = (v, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : '–');
export const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(1)}%` : '–');
export const bytes = (n) => (typeof n !== 'number' ? '–' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
export const secs = (s) => (typeof s !== 'number' ? '–' : s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`);

export const pill = (state) => `<span class="pill ${esc(String(state ?? '').toLowerCase())}" data-state="${esc(state)}">${esc(state ?? '?')}</span>`;
export const labels = (o) => Object.entries(o ?? {}).map(([k, v]) => `<span class="label">${esc(k)}=${esc(v)}</span>`).join('') || '<span class="muted">none</span>';
export const notAvailable = (what) => `<div class="notice" data-not-available="${esc(what)}">${esc(what)}: not available in this build of the control plane.</div>`;
export const progressBar = (fraction) => `<div class="progress" title="${pct(fraction)}"><span style="width:${Math.max(0, Math.min(1, fraction || 0)) * 100}%"></span></div>`;

/** A table from rows and [header, (row) => html] columns; cell functions return HTML (escape inside). */
export function table(rows, columns, attrs = '') {
  if (!rows.length) return '<p class="muted">none</p>';
  return `<table class="data" ${attrs}><thead><tr>${columns.map(([h]) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr${r.__attrs ? ` ${r.__attrs}` : ''}>${columns.map(([, f]) => `<td>${f(r) ?? ''}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** key/value rows for a flat view of an object: nested objects become a.b keys, arrays are joined. */
export function flatten(o, prefix = '', out = []) {
  for (const [k, v] of Object.entries(o ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, Array.isArray(v) ? v.join(' ') : v]);
  }
  return out;
}
export const kv = (pairs) => `<table class="data kv">${pairs.map(([k, v]) => `<tr data-key="${esc(k)}"><td>${esc(k)}</td><td>${typeof v === 'string' && v.startsWith('<') ? v : esc(v ?? '–')}</td></tr>`).join('')}</table>`;
