// Small view helpers. Everything returns lit-html templates or plain strings; lit-html escapes every value, so a
// device-supplied string can only ever show up as text.
import { html, nothing, styleMap } from './lit.js';
import { Directive, directive, PartType } from '/ui/vendor/lit-html/directive.js';

export const ago = (ts) => {
  if (ts == null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.floor(s / 60)}m ago` : s < 86400 ? `${Math.floor(s / 3600)}h ago` : `${Math.floor(s / 86400)}d ago`;
};
export const when = (ts) => (ts == null ? '' : new Date(ts).toLocaleString());
export const num = (v, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : '–');
export const pct = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
export const bytes = (n) => (typeof n !== 'number' ? '–' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
export const secs = (s) => (typeof s !== 'number' ? '–' : s < 60 ? `${Math.round(s)}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`);
export const modelRef = (m) => (m ? html`<a href="#/models/${encodeURIComponent(m.modelId)}">${m.modelId}</a> v${m.version}` : 'none');

/** Sets data-* attributes from an object: `<tr ${data({ device: id })}>` (lit-html has no attribute spread). */
class DataAttrs extends Directive {
  constructor(part) {
    super(part);
    if (part.type !== PartType.ELEMENT) throw new Error('data() goes on an element');
  }
  render() { return nothing; }
  update(part, [attrs]) {
    for (const [k, v] of Object.entries(attrs ?? {})) part.element.setAttribute(`data-${k}`, String(v ?? ''));
    return nothing;
  }
}
export const data = directive(DataAttrs);

export const pill = (state) => html`<span class="pill ${String(state ?? '').toLowerCase().replace(/[^a-z0-9-]/g, '')}" data-state=${state ?? ''}>${state ?? '?'}</span>`;
export const labels = (o) => {
  const e = Object.entries(o ?? {});
  return e.length ? e.map(([k, v]) => html`<span class="label">${k}=${v}</span>`) : html`<span class="muted">none</span>`;
};
export const notAvailable = (what) => html`<div class="notice" data-not-available=${what}>${what}: not available in this build of the control plane.</div>`;
export const progressBar = (fraction) => html`<div class="progress" title=${pct(fraction)}><span style=${styleMap({ width: `${Math.max(0, Math.min(1, fraction || 0)) * 100}%` })}></span></div>`;

/**
 * A table from rows and [header, (row) => template | string] columns. opts: {id, row: (r) => data attributes}.
 */
export function table(rows, columns, opts = {}) {
  if (!rows.length) return html`<p class="muted" id=${opts.id ?? nothing}>none</p>`;
  return html`<div class="table-wrap"><table class="data" id=${opts.id ?? nothing}><thead><tr>${columns.map(([h]) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (r) => html`<tr ${data(opts.row?.(r))}>${columns.map(([, f]) => html`<td>${f(r) ?? ''}</td>`)}</tr>`,
  )}</tbody></table></div>`;
}

/** key/value rows for a flat view of an object: nested objects become a.b keys, arrays are joined. */
export function flatten(o, prefix = '', out = []) {
  for (const [k, v] of Object.entries(o ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else if (Array.isArray(v) && v.some((x) => x && typeof x === 'object')) v.forEach((x, i) => (x && typeof x === 'object' ? flatten(x, `${key}.${i}`, out) : out.push([`${key}.${i}`, x])));
    else out.push([key, Array.isArray(v) ? v.join(' ') : v]);
  }
  return out;
}

/** Key/value rows; values are templates or plain values (shown as text, whatever they contain). */
export const kv = (pairs, opts = {}) => html`<table class="data kv" id=${opts.id ?? nothing}>${pairs.map(([k, v]) => html`<tr data-key=${k}><td>${k}</td><td>${v ?? '–'}</td></tr>`)}</table>`;
