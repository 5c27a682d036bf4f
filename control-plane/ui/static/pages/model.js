// One model: lineage, central metrics, the versions or the artifacts of its training job, diagnostics
// (GET /models/:id answers the model with all its versions, newest first).
import { optional } from '../api.js';
import { COLORS, barChart } from '../charts.js';
import { html, nothing } from '../lit.js';
import { bytes, flatten, kv, notAvailable, num, pct, table, when } from '../dom.js';

/** A nested value (teacher, dataset spec) as `key value` lines instead of raw JSON. */
const fields = (v) => (v && typeof v === 'object' ? html`<div class="fields">${flatten(v).map(([k, x]) => html`<div><span class="muted">${k}</span> ${String(x ?? '–')}</div>`)}</div>` : (v ?? '–'));

/** Per-layer quantization error (SQNR, dB; lower is worse), outlier layers in red. */
export function layerErrorChart(recipeId, diag) {
  const layers = Array.isArray(diag?.layers) ? diag.layers : [];
  if (!layers.length) return nothing;
  return html`<h3>${recipeId}: per-layer quantization error</h3>${barChart(
    layers.map((l) => ({ label: l.layer, value: l.sqnrDb, color: l.outlier ? '#dc2626' : l.quantized ? COLORS[0] : '#94a3b8', title: `${l.layer} (${l.opType}): SQNR ${num(l.sqnrDb, 1)} dB, accumulated ${num(l.accumulatedSqnrDb, 1)} dB, cosine ${num(l.cosine, 4)}${l.outlier ? ', outlier' : ''}${l.quantized ? '' : ', kept in float'}` })),
    { name: `layer-error-${recipeId}`, yLabel: 'SQNR (dB)' },
  )}<p class="muted">SQNR of each layer's own quantization (higher is better); red: activation outliers; grey: kept in float.${Array.isArray(diag.floatLayers) && diag.floatLayers.length ? ` Float layers: ${diag.floatLayers.join(', ')}.` : ''}</p>`;
}

/** Diagnostics are one recipe's ({layers, ...}) or keyed by recipe (the trainer's output, not typed further). */
function diagnosticsCharts(diag, recipeId) {
  if (!diag || typeof diag !== 'object') return html`<p class="muted">no diagnostics recorded</p>`;
  if (Array.isArray(diag.layers)) return layerErrorChart(recipeId ?? 'model', diag);
  const parts = Object.entries(diag).filter(([, d]) => Array.isArray(d?.layers) && d.layers.length);
  return parts.length ? parts.map(([r, d]) => layerErrorChart(r, d)) : html`<p class="muted">no per-layer diagnostics recorded</p>`;
}

function runtimeCheck(rt) {
  if (!rt) return 'not run';
  return html`${rt.flagged ? html`<span class="error">flagged: ${rt.reason}</span>` : 'ok'} · accuracy ${pct(rt.accuracy)} · agreement ${pct(rt.agreement)} on ${rt.evaluated} inputs · ${rt.host.label}`;
}

export async function modelPage({ args: [id] }) {
  const m = await optional(`/models/${encodeURIComponent(id)}`);
  if (m === null) return html`<p><a href="#/models">← Models</a></p>${notAvailable('The model registry (/models/:id)')}`;
  const latest = m.versions[0];
  const { metrics, lineage } = latest;
  const bars = [];
  if (metrics.teacherFp32 !== null) bars.push({ label: 'teacher fp32', value: metrics.teacherFp32, color: '#64748b' });
  if (metrics.studentFp32 !== null) bars.push({ label: 'student fp32', value: metrics.studentFp32, color: '#94a3b8' });
  if (metrics.studentInt8 !== null) bars.push({ label: `int8 (${latest.recipeId ?? 'recipe'})`, value: metrics.studentInt8, color: COLORS[0] });
  if (metrics.accuracy !== null) bars.push({ label: `this model (${latest.kind}), eval set`, value: metrics.accuracy, color: COLORS[2] });
  if (metrics.runtime?.accuracy != null) bars.push({ label: 'onnxruntime on the host', value: metrics.runtime.accuracy, color: COLORS[5] });
  const siblings = lineage.jobId ? await optional(`/models?job=${encodeURIComponent(lineage.jobId)}&limit=100`) : null;
  const artifacts = siblings ? siblings.items : m.versions;
  return html`<p><a href="#/models">← Models</a> · <a href="#/models/${encodeURIComponent(id)}/report">fleet report</a></p>
    <h1>Model ${id} <span class="muted">${m.name} v${latest.version}</span></h1>
    <div class="grid two">
      <div class="card"><h2>Lineage</h2>${kv([
        ['profile / recipe', `${latest.profileId ?? '–'} / ${latest.recipeId ?? '–'}`],
        ['kind / role', `${latest.kind} / ${latest.role}`],
        ['source', lineage.source],
        ['training job', lineage.jobId ? html`<a href="#/training/${encodeURIComponent(lineage.jobId)}">${lineage.jobId}</a>` : '–'],
        ['parents', lineage.parents.length ? lineage.parents.map((p, i) => html`${i ? ', ' : ''}<a href="#/models/${encodeURIComponent(p.id)}">${p.id} v${p.version}</a>`) : 'none'],
        ['teacher', fields(lineage.teacher)],
        ['dataset', fields(lineage.dataset)],
        ['classes', lineage.classNames ? lineage.classNames.map((n, i) => `${i} ${n}`).join(', ') : 'class ids (the labels had no names)'],
        ['float layers', lineage.floatLayers.join(', ') || 'none'],
        ['toolchain', lineage.versions ? Object.entries(lineage.versions).map(([k, v]) => `${k} ${v}`).join(', ') : '–'],
        ['runtime check', runtimeCheck(metrics.runtime)],
        ['sha256', html`<span class="mono">${latest.sha256}</span>`],
        ['created', when(latest.createdAt)],
      ], { id: 'lineage' })}</div>
      <div class="card"><h2>Central metrics (eval-set accuracy)</h2>${bars.length ? barChart(bars, { name: 'central-metrics', yLabel: 'accuracy' }) : html`<p class="muted">no metrics recorded</p>`}</div>
    </div>
    <div class="card"><h2>${siblings ? 'Artifacts of the same training job, per profile' : 'Versions'}</h2>${table(artifacts, [
      ['model', (a) => html`<a href="#/models/${encodeURIComponent(a.id)}">${a.id}</a>`],
      ['version', (a) => a.version],
      ['profile', (a) => a.profileId ?? '–'],
      ['recipe', (a) => a.recipeId ?? '–'],
      ['kind', (a) => a.kind],
      ['size', (a) => bytes(a.size)],
      ['accuracy', (a) => pct(a.metrics.accuracy)],
      ['sha256', (a) => html`<span class="mono">${a.sha256.slice(0, 16)}…</span>`],
    ], { id: 'artifacts' })}</div>
    <div class="card"><h2>Diagnostics</h2>${diagnosticsCharts(latest.diagnostics, latest.recipeId)}</div>`;
}
