// Charts as inline SVG strings, drawn by hand (no library, no CDN). Every mark carries a class
// (bar, pt, seg, box) and every chart a data-chart name, so tests can count what was drawn.

export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

export const COLORS = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#64748b'];
export const STATUS_COLORS = { online: '#16a34a', offline: '#dc2626', unknown: '#94a3b8', revoked: '#475569' };

const fmt = (v) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

/** "Nice" ticks from lo to hi. */
export function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out = [];
  // ticks cover [lo, hi]: the first at or below lo, the last at or above hi
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  for (let k = first; k <= last; k++) out.push(+(k * step).toPrecision(12));
  return out;
}

function frame(name, w, h, body, extra = '') {
  return `<svg class="chart" data-chart="${esc(name)}" viewBox="0 0 ${w} ${h}" width="100%" style="max-width:${w}px" role="img" ${extra}>${body}</svg>`;
}

function axisY(t, y, x0, x1, label) {
  return t.map((v) => `<line x1="${x0}" x2="${x1}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end" class="tick">${fmt(v)}</text>`).join('') +
    (label ? `<text transform="translate(12 ${(y(t[0]) + y(t[t.length - 1])) / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${esc(label)}</text>` : '');
}

/**
 * Vertical bars. bars: [{label, value, color?, title?}]. opts: {name, unit, yLabel, ref (a reference line value), height}.
 */
export function barChart(bars, opts = {}) {
  const w = Math.max(360, Math.min(1100, 60 + bars.length * 34)), h = opts.height ?? 260;
  const m = { l: 56, r: 12, t: 12, b: opts.rotate === false ? 36 : 90 };
  const vals = bars.map((b) => b.value).filter(Number.isFinite);
  const lo = Math.min(0, ...vals, opts.ref ?? 0), hi = Math.max(...vals, opts.ref ?? 0, 1e-9);
  const t = ticks(lo, hi);
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - t[0]) / (t[t.length - 1] - t[0]));
  const bw = (w - m.l - m.r) / Math.max(1, bars.length);
  let body = axisY(t, y, m.l, w - m.r, opts.yLabel);
  bars.forEach((b, i) => {
    const x = m.l + i * bw + bw * 0.15, v = Number.isFinite(b.value) ? b.value : 0;
    const cy = Math.min(y(0), y(v)), ch = Math.abs(y(v) - y(0));
    body += `<rect class="bar" x="${x}" y="${cy}" width="${bw * 0.7}" height="${Math.max(ch, 0.5)}" fill="${b.color ?? COLORS[0]}"><title>${esc(b.title ?? `${b.label}: ${fmt(v)}${opts.unit ?? ''}`)}</title></rect>`;
    const lx = x + bw * 0.35;
    body += opts.rotate === false
      ? `<text x="${lx}" y="${h - m.b + 16}" text-anchor="middle" class="tick">${esc(b.label)}</text>`
      : `<text transform="translate(${lx + 3} ${h - m.b + 8}) rotate(-55)" text-anchor="end" class="tick">${esc(String(b.label).slice(0, 22))}</text>`;
  });
  if (opts.ref !== undefined) body += `<line class="ref" x1="${m.l}" x2="${w - m.r}" y1="${y(opts.ref)}" y2="${y(opts.ref)}"/><text x="${w - m.r}" y="${y(opts.ref) - 4}" text-anchor="end" class="tick">${esc(opts.refLabel ?? fmt(opts.ref))}</text>`;
  return frame(opts.name ?? 'bars', w, h, body);
}

/** Horizontal stacked bars. groups: [{label, parts: [{key, value, color}]}]. */
export function stackedBars(groups, opts = {}) {
  const rowH = 28, m = { l: 150, r: 40, t: 8, b: 28 };
  const w = 640, h = m.t + m.b + groups.length * rowH;
  const max = Math.max(1, ...groups.map((g) => g.parts.reduce((s, p) => s + p.value, 0)));
  const x = (v) => m.l + ((w - m.l - m.r) * v) / max;
  let body = '';
  groups.forEach((g, i) => {
    const y = m.t + i * rowH;
    let acc = 0;
    body += `<g class="bar-group" data-label="${esc(g.label)}"><text x="${m.l - 8}" y="${y + rowH / 2 + 4}" text-anchor="end" class="tick">${esc(g.label)}</text>`;
    for (const p of g.parts) {
      if (p.value > 0) body += `<rect class="bar" data-key="${esc(p.key)}" x="${x(acc)}" y="${y + 4}" width="${x(acc + p.value) - x(acc)}" height="${rowH - 8}" fill="${p.color}"><title>${esc(`${g.label} ${p.key}: ${p.value}`)}</title></rect>`;
      acc += p.value;
    }
    body += `<text x="${x(acc) + 6}" y="${y + rowH / 2 + 4}" class="tick">${acc}</text></g>`;
  });
  const legend = (opts.legend ?? []).map((l, i) => `<rect x="${m.l + i * 90}" y="${h - 16}" width="10" height="10" fill="${l.color}"/><text x="${m.l + i * 90 + 14}" y="${h - 7}" class="tick">${esc(l.key)}</text>`).join('');
  return frame(opts.name ?? 'stacked', w, h, body + legend);
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
  let body = axisY(ty, y, m.l, w - m.r, opts.yLabel ?? 'accuracy');
  body += tx.map((v) => `<text x="${x(v)}" y="${h - m.b + 16}" text-anchor="middle" class="tick">${fmt(v)}</text>`).join('');
  body += `<text x="${(m.l + w - m.r) / 2}" y="${h - 6}" text-anchor="middle" class="axis-label">${esc(opts.xLabel ?? 'latency p50 (ms)')}</text>`;
  const front = paretoFront(points);
  if (front.length > 1) {
    let d = `M${x(front[0].x)},${y(front[0].y)}`;
    for (let i = 1; i < front.length; i++) d += ` H${x(front[i].x)} V${y(front[i].y)}`;
    body += `<path class="pareto" d="${d}"/>`;
  }
  for (const p of points) {
    const onFront = front.includes(p);
    body += `<circle class="pt${onFront ? ' front' : ''}" cx="${x(p.x)}" cy="${y(p.y)}" r="${onFront ? 6 : 4.5}" fill="${p.color ?? COLORS[0]}"><title>${esc(`${p.label}: ${fmt(p.x)} ms, accuracy ${fmt(p.y)}${onFront ? ' (Pareto front)' : ''}`)}</title></circle>`;
    if (opts.labels !== false) body += `<text x="${x(p.x) + 8}" y="${y(p.y) - 6}" class="tick pt-label">${esc(p.label)}</text>`;
  }
  return frame(opts.name ?? 'scatter', w, h, body);
}

/** Box plots: groups [{label, min, p50, p90, p99, max, color?, points?: number[]}], latency on y. */
export function boxPlot(groups, opts = {}) {
  const w = Math.max(360, 80 + groups.length * 110), h = opts.height ?? 280, m = { l: 56, r: 12, t: 12, b: 48 };
  const all = groups.flatMap((g) => [g.min, g.max, ...(g.points ?? [])]).filter(Number.isFinite);
  const t = ticks(0, Math.max(...all, 1e-6));
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - t[0]) / (t[t.length - 1] - t[0]));
  const bw = (w - m.l - m.r) / Math.max(1, groups.length);
  let body = axisY(t, y, m.l, w - m.r, opts.yLabel ?? 'latency (ms)');
  groups.forEach((g, i) => {
    const cx = m.l + bw * (i + 0.5), half = Math.min(28, bw * 0.3), c = g.color ?? COLORS[i % COLORS.length];
    body += `<g class="box" data-label="${esc(g.label)}"><title>${esc(`${g.label}: min ${fmt(g.min)} p50 ${fmt(g.p50)} p90 ${fmt(g.p90)} p99 ${fmt(g.p99)} max ${fmt(g.max)} ms`)}</title>` +
      `<line x1="${cx}" x2="${cx}" y1="${y(g.min)}" y2="${y(g.max)}" stroke="${c}"/>` +
      `<rect x="${cx - half}" y="${y(g.p90)}" width="${half * 2}" height="${Math.max(1, y(g.p50) - y(g.p90))}" fill="${c}" fill-opacity="0.35" stroke="${c}"/>` +
      `<line x1="${cx - half}" x2="${cx + half}" y1="${y(g.p50)}" y2="${y(g.p50)}" stroke="${c}" stroke-width="3"/>` +
      `<line x1="${cx - half / 2}" x2="${cx + half / 2}" y1="${y(g.p99)}" y2="${y(g.p99)}" stroke="${c}" stroke-dasharray="3 2"/>` +
      (g.points ?? []).map((p, k) => `<circle class="pt" cx="${cx + half + 6 + (k % 4) * 3}" cy="${y(p)}" r="2.5" fill="${c}"/>`).join('') +
      `<text x="${cx}" y="${h - m.b + 16}" text-anchor="middle" class="tick">${esc(g.label)}</text></g>`;
  });
  return frame(opts.name ?? 'boxes', w, h, body);
}

/** Presence over time: segments [{from, to, status}] on one strip, oldest left. */
export function timeline(segments, opts = {}) {
  const w = 640, h = 54, m = { l: 8, r: 8 };
  if (!segments.length) return frame(opts.name ?? 'timeline', w, h, '<text x="8" y="30" class="tick">no presence history</text>');
  const lo = segments[0].from, hi = Math.max(segments[segments.length - 1].to, lo + 1);
  const x = (v) => m.l + ((w - m.l - m.r) * (v - lo)) / (hi - lo);
  let body = '';
  for (const s of segments) body += `<rect class="seg" data-status="${esc(s.status)}" x="${x(s.from)}" y="8" width="${Math.max(1, x(s.to) - x(s.from))}" height="22" fill="${STATUS_COLORS[s.status] ?? '#94a3b8'}"><title>${esc(`${s.status} from ${new Date(s.from).toLocaleTimeString()}${s.reason ? ` (${s.reason})` : ''}`)}</title></rect>`;
  body += `<text x="${m.l}" y="46" class="tick">${esc(new Date(lo).toLocaleString())}</text><text x="${w - m.r}" y="46" text-anchor="end" class="tick">now</text>`;
  return frame(opts.name ?? 'timeline', w, h, body);
}

/** A small line of values (loss over steps). */
export function sparkline(values, opts = {}) {
  const w = opts.width ?? 160, h = opts.height ?? 32;
  const v = values.filter(Number.isFinite);
  if (v.length < 2) return '';
  const lo = Math.min(...v), hi = Math.max(...v, lo + 1e-9);
  const pts = v.map((p, i) => `${(i / (v.length - 1)) * (w - 4) + 2},${h - 2 - ((p - lo) / (hi - lo)) * (h - 4)}`).join(' ');
  return frame(opts.name ?? 'sparkline', w, h, `<polyline class="spark" points="${pts}"/>`);
}
