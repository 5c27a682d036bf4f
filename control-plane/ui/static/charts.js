// Charts as SVG drawn by hand with lit-html's svg templates (no chart library, no CDN; every label is escaped).
// Every mark carries a class (bar, pt, seg, box, line) and every chart a data-chart name, so tests can count what
// was drawn.
import { html, nothing, styleMap, svg } from './lit.js';

export const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];
export const STATUS_COLORS = { online: '#16a34a', offline: '#dc2626', unknown: '#94a3b8', revoked: '#475569' };

export const fmt = (v) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
/** An approximate text width in px at the charts' 11px font, to size margins so labels are not clipped. */
const textWidth = (s) => String(s).length * 6.2;

/** "Nice" ticks from lo to hi; `integer` keeps the step at 1 or more (counts of devices have no fractions). */
export function ticks(lo, hi, n = 5, integer = false) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  if (integer) step = Math.max(1, Math.ceil(step));
  const out = [];
  // ticks cover [lo, hi]: the first at or below lo, the last at or above hi
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  for (let k = first; k <= last; k++) out.push(+(k * step).toPrecision(12));
  return out;
}

function frame(name, w, h, body) {
  return html`<svg class="chart" data-chart=${name} viewBox="0 0 ${w} ${h}" width="100%" style=${styleMap({ maxWidth: `${w}px` })} role="img">${body}</svg>`;
}

function axisY(t, y, x0, x1, label) {
  return svg`${t.map((v) => svg`<line x1=${x0} x2=${x1} y1=${y(v)} y2=${y(v)} class="grid"/><text x=${x0 - 6} y=${y(v) + 4} text-anchor="end" class="tick">${fmt(v)}</text>`)}
    ${label ? svg`<text transform="translate(12 ${(y(t[0]) + y(t[t.length - 1])) / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${label}</text>` : nothing}`;
}

const ROTATE = 50, SIN = Math.sin((ROTATE * Math.PI) / 180), COS = Math.cos((ROTATE * Math.PI) / 180);
const LABEL_MAX = 28;

/**
 * Vertical bars. bars: [{label, value, color?, title?}]. opts: {name, unit, yLabel, ref, refLabel, height, rotate,
 * integer}. Rotated labels get the room they need below and to the left, so none is clipped.
 */
export function barChart(bars, opts = {}) {
  const shown = bars.map((b) => (String(b.label).length > LABEL_MAX ? `${String(b.label).slice(0, LABEL_MAX - 1)}…` : String(b.label)));
  const longest = Math.max(0, ...shown.map(textWidth));
  const rotate = opts.rotate !== false;
  const bw0 = 34;
  const w = Math.max(360, Math.min(1100, 80 + bars.length * bw0));
  const m = { l: 56, r: 12, t: 12, b: rotate ? Math.ceil(16 + longest * SIN) : 36 };
  if (rotate) m.l = Math.max(56, Math.ceil(longest * COS - bw0 / 2 + 8));
  const h = (opts.height ?? 180) + m.b;
  const vals = bars.map((b) => b.value).filter(Number.isFinite);
  const lo = Math.min(0, ...vals, opts.ref ?? 0), hi = Math.max(...vals, opts.ref ?? 0, 1e-9);
  const t = ticks(lo, hi, 5, opts.integer);
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - t[0]) / (t[t.length - 1] - t[0]));
  const bw = (w - m.l - m.r) / Math.max(1, bars.length);
  const marks = bars.map((b, i) => {
    const x = m.l + i * bw + bw * 0.15, v = Number.isFinite(b.value) ? b.value : 0;
    const cy = Math.min(y(0), y(v)), ch = Math.abs(y(v) - y(0));
    const lx = x + bw * 0.35;
    return svg`<rect class="bar" x=${x} y=${cy} width=${bw * 0.7} height=${Math.max(ch, 0.5)} fill=${b.color ?? COLORS[0]}><title>${b.title ?? `${b.label}: ${fmt(v)}${opts.unit ?? ''}`}</title></rect>
      ${rotate
        ? svg`<text transform="translate(${lx + 3} ${h - m.b + 8}) rotate(-${ROTATE})" text-anchor="end" class="tick bar-label">${shown[i]}</text>`
        : svg`<text x=${lx} y=${h - m.b + 16} text-anchor="middle" class="tick bar-label">${shown[i]}</text>`}`;
  });
  const ref = opts.ref !== undefined
    ? svg`<line class="ref" x1=${m.l} x2=${w - m.r} y1=${y(opts.ref)} y2=${y(opts.ref)}/><text x=${w - m.r} y=${y(opts.ref) - 4} text-anchor="end" class="tick">${opts.refLabel ?? fmt(opts.ref)}</text>`
    : nothing;
  return frame(opts.name ?? 'bars', w, h, svg`${axisY(t, y, m.l, w - m.r, opts.yLabel)}${marks}${ref}`);
}

/** Horizontal stacked bars. groups: [{label, parts: [{key, value, color}]}]. */
export function stackedBars(groups, opts = {}) {
  const rowH = 28, m = { l: Math.max(100, Math.min(240, 16 + Math.max(0, ...groups.map((g) => textWidth(g.label))))), r: 40, t: 8, b: 28 };
  const w = 640, h = m.t + m.b + groups.length * rowH;
  const max = Math.max(1, ...groups.map((g) => g.parts.reduce((s, p) => s + p.value, 0)));
  const x = (v) => m.l + ((w - m.l - m.r) * v) / max;
  const rows = groups.map((g, i) => {
    const y = m.t + i * rowH;
    let acc = 0;
    const parts = g.parts.map((p) => {
      const from = acc;
      acc += p.value;
      return p.value > 0 ? svg`<rect class="bar" data-key=${p.key} x=${x(from)} y=${y + 4} width=${x(from + p.value) - x(from)} height=${rowH - 8} fill=${p.color}><title>${`${g.label} ${p.key}: ${p.value}`}</title></rect>` : nothing;
    });
    return svg`<g class="bar-group" data-label=${g.label}><text x=${m.l - 8} y=${y + rowH / 2 + 4} text-anchor="end" class="tick">${g.label}</text>${parts}<text x=${x(acc) + 6} y=${y + rowH / 2 + 4} class="tick">${acc}</text></g>`;
  });
  const legend = (opts.legend ?? []).map((l, i) => svg`<rect x=${m.l + i * 90} y=${h - 16} width="10" height="10" fill=${l.color}/><text x=${m.l + i * 90 + 14} y=${h - 7} class="tick">${l.key}</text>`);
  return frame(opts.name ?? 'stacked', w, h, svg`${rows}${legend}`);
}

/** Points not beaten on both axes: lower x (latency) and higher y (accuracy) are better. Sorted by x. */
export function paretoFront(points) {
  const sorted = [...points].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x || b.y - a.y);
  const front = [];
  let best = -Infinity;
  for (const p of sorted) if (p.y > best) { front.push(p); best = p.y; }
  return front;
}

/** Scatter of {x, y, label, color?} with the Pareto front drawn as a step line and its points ringed. */
export function scatterChart(points, opts = {}) {
  const w = opts.width ?? 520, h = opts.height ?? 320, m = { l: 60, r: 16, t: 16, b: 44 };
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const tx = ticks(opts.xZero ? 0 : Math.min(...xs) * 0.9, Math.max(...xs) * 1.05), ty = ticks(Math.min(...ys) - 0.01, Math.min(1, Math.max(...ys) + 0.01));
  const x = (v) => m.l + ((w - m.l - m.r) * (v - tx[0])) / (tx[tx.length - 1] - tx[0]);
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - ty[0]) / (ty[ty.length - 1] - ty[0]));
  const front = paretoFront(points);
  let d = '';
  if (front.length > 1) {
    d = `M${x(front[0].x)},${y(front[0].y)}`;
    for (let i = 1; i < front.length; i++) d += ` H${x(front[i].x)} V${y(front[i].y)}`;
  }
  const marks = points.map((p) => {
    const onFront = front.includes(p);
    return svg`<circle class="pt${onFront ? ' front' : ''}" cx=${x(p.x)} cy=${y(p.y)} r=${onFront ? 6 : 4.5} fill=${p.color ?? COLORS[0]}><title>${`${p.label}: ${fmt(p.x)} ms, accuracy ${fmt(p.y)}${onFront ? ' (Pareto front)' : ''}`}</title></circle>
      ${opts.labels !== false ? svg`<text x=${x(p.x) + 8} y=${y(p.y) - 6} class="tick pt-label">${p.label}</text>` : nothing}`;
  });
  return frame(opts.name ?? 'scatter', w, h, svg`${axisY(ty, y, m.l, w - m.r, opts.yLabel ?? 'accuracy')}
    ${tx.map((v) => svg`<text x=${x(v)} y=${h - m.b + 16} text-anchor="middle" class="tick">${fmt(v)}</text>`)}
    <text x=${(m.l + w - m.r) / 2} y=${h - 6} text-anchor="middle" class="axis-label">${opts.xLabel ?? 'latency p50 (ms)'}</text>
    ${d ? svg`<path class="pareto" d=${d}/>` : nothing}${marks}`);
}

/** Box plots: groups [{label, min, p50, p90, p99, max, color?, points?: number[]}], latency on y. */
export function boxPlot(groups, opts = {}) {
  const w = Math.max(360, 80 + groups.length * 110), h = opts.height ?? 280, m = { l: 56, r: 12, t: 12, b: 48 };
  const all = groups.flatMap((g) => [g.min, g.max, ...(g.points ?? [])]).filter(Number.isFinite);
  const t = ticks(0, Math.max(...all, 1e-6));
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - t[0]) / (t[t.length - 1] - t[0]));
  const bw = (w - m.l - m.r) / Math.max(1, groups.length);
  const boxes = groups.map((g, i) => {
    const cx = m.l + bw * (i + 0.5), half = Math.min(28, bw * 0.3), c = g.color ?? COLORS[i % COLORS.length];
    return svg`<g class="box" data-label=${g.label}><title>${`${g.label}: min ${fmt(g.min)} p50 ${fmt(g.p50)} p90 ${fmt(g.p90)} p99 ${fmt(g.p99)} max ${fmt(g.max)} ms`}</title>
      <line x1=${cx} x2=${cx} y1=${y(g.min)} y2=${y(g.max)} stroke=${c}/>
      <rect x=${cx - half} y=${y(g.p90)} width=${half * 2} height=${Math.max(1, y(g.p50) - y(g.p90))} fill=${c} fill-opacity="0.35" stroke=${c}/>
      <line x1=${cx - half} x2=${cx + half} y1=${y(g.p50)} y2=${y(g.p50)} stroke=${c} stroke-width="3"/>
      <line x1=${cx - half / 2} x2=${cx + half / 2} y1=${y(g.p99)} y2=${y(g.p99)} stroke=${c} stroke-dasharray="3 2"/>
      ${(g.points ?? []).map((p, k) => svg`<circle class="pt" cx=${cx + half + 6 + (k % 4) * 3} cy=${y(p)} r="2.5" fill=${c}/>`)}
      <text x=${cx} y=${h - m.b + 16} text-anchor="middle" class="tick">${g.label}</text></g>`;
  });
  return frame(opts.name ?? 'boxes', w, h, svg`${axisY(t, y, m.l, w - m.r, opts.yLabel ?? 'latency (ms)')}${boxes}`);
}

/** Presence over time: segments [{from, to, status}] on one strip, oldest left. */
export function timeline(segments, opts = {}) {
  const w = 640, h = 54, m = { l: 8, r: 8 };
  if (!segments.length) return frame(opts.name ?? 'timeline', w, h, svg`<text x="8" y="30" class="tick">no presence history</text>`);
  const lo = segments[0].from, hi = Math.max(segments[segments.length - 1].to, lo + 1);
  const x = (v) => m.l + ((w - m.l - m.r) * (v - lo)) / (hi - lo);
  return frame(opts.name ?? 'timeline', w, h, svg`${segments.map((s) => svg`<rect class="seg" data-status=${s.status} x=${x(s.from)} y="8" width=${Math.max(1, x(s.to) - x(s.from))} height="22" fill=${STATUS_COLORS[s.status] ?? '#94a3b8'}><title>${`${s.status} from ${new Date(s.from).toLocaleTimeString()}${s.reason ? ` (${s.reason})` : ''}`}</title></rect>`)}
    <text x=${m.l} y="46" class="tick">${new Date(lo).toLocaleString()}</text><text x=${w - m.r} y="46" text-anchor="end" class="tick">now</text>`);
}

/**
 * Lines over a shared x axis: series [{name, color?, points: [{x, y}]}]. opts: {name, xLabel, yLabel, time (x is epoch
 * ms: ticks show clock times), yMin, yMax, height}. One circle per point (class pt) so a test can count them.
 */
export function lineChart(series, opts = {}) {
  const w = opts.width ?? 560, h = opts.height ?? 220, m = { l: 56, r: 14, t: 12, b: 40 };
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (!pts.length) return frame(opts.name ?? 'lines', w, 40, svg`<text x="8" y="24" class="tick">no data yet</text>`);
  const xlo = Math.min(...pts.map((p) => p.x)), xhi = Math.max(...pts.map((p) => p.x), xlo + 1);
  const ty = ticks(opts.yMin ?? Math.min(...pts.map((p) => p.y)), opts.yMax ?? Math.max(...pts.map((p) => p.y)), 4);
  const x = (v) => m.l + ((w - m.l - m.r) * (v - xlo)) / (xhi - xlo);
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - ty[0]) / (ty[ty.length - 1] - ty[0]));
  const xt = opts.time ? [xlo, (xlo + xhi) / 2, xhi] : ticks(xlo, xhi, 5, true).filter((v) => v >= xlo && v <= xhi);
  const xLabel = (v) => (opts.time ? new Date(v).toLocaleTimeString() : fmt(v));
  const lines = series.map((s, i) => {
    const c = s.color ?? COLORS[i % COLORS.length];
    const ps = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    return svg`<g class="series" data-series=${s.name}>
      <polyline class="line" fill="none" stroke=${c} stroke-width="1.8" points=${ps.map((p) => `${x(p.x)},${y(p.y)}`).join(' ')}/>
      ${ps.map((p) => svg`<circle class="pt" cx=${x(p.x)} cy=${y(p.y)} r="2.5" fill=${c}><title>${`${s.name}: ${fmt(p.y)}${opts.unit ?? ''} at ${xLabel(p.x)}`}</title></circle>`)}</g>`;
  });
  const legend = series.length > 1
    ? series.map((s, i) => svg`<rect x=${m.l + i * 110} y=${h - 12} width="10" height="10" fill=${s.color ?? COLORS[i % COLORS.length]}/><text x=${m.l + i * 110 + 14} y=${h - 3} class="tick">${s.name}</text>`)
    : nothing;
  return frame(opts.name ?? 'lines', w, h, svg`${axisY(ty, y, m.l, w - m.r, opts.yLabel)}
    ${xt.map((v, i) => svg`<text x=${x(v)} y=${h - m.b + 14} text-anchor=${i === 0 && opts.time ? 'start' : i === xt.length - 1 && opts.time ? 'end' : 'middle'} class="tick">${xLabel(v)}</text>`)}
    ${opts.xLabel && series.length <= 1 ? svg`<text x=${(m.l + w - m.r) / 2} y=${h - 4} text-anchor="middle" class="axis-label">${opts.xLabel}</text>` : nothing}
    ${lines}${legend}`);
}

/** A small line of values (loss over steps). */
export function sparkline(values, opts = {}) {
  const w = opts.width ?? 160, h = opts.height ?? 32;
  const v = values.filter(Number.isFinite);
  if (v.length < 2) return nothing;
  const lo = Math.min(...v), hi = Math.max(...v, lo + 1e-9);
  const pts = v.map((p, i) => `${(i / (v.length - 1)) * (w - 4) + 2},${h - 2 - ((p - lo) / (hi - lo)) * (h - 4)}`).join(' ');
  return frame(opts.name ?? 'sparkline', w, h, svg`<polyline class="spark" points=${pts}/>`);
}
