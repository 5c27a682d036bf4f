import { itemsOf, optional, pick } from '../api.js';
import { COLORS, barChart, boxPlot, scatterChart } from '../charts.js';
import { bytes, esc, kv, notAvailable, num, pct, table, when } from '../dom.js';
import { accuracyVsLatency, devicePoints, latencyByProfile, reportRows, speedups } from '../report.js';

const modelId = (m) => pick(m, 'id', 'modelId');

export async function modelsPage() {
  const body = await optional('/models?limit=1000');
  if (body === null) return `<h1>Models</h1>${notAvailable('The model registry (/models)')}`;
  return `<h1>Models</h1><div class="card">${table(itemsOf(body).map((m) => ({ ...m, __attrs: `data-model="${esc(modelId(m))}" data-version="${esc(pick(m, 'version'))}"` })), [
    ['model', (m) => `<a href="#/models/${encodeURIComponent(modelId(m))}">${esc(modelId(m))}</a>`],
    ['name', (m) => esc(pick(m, 'name') ?? '')],
    ['version', (m) => esc(pick(m, 'version', 'latestVersion') ?? '–')],
    ['profile', (m) => esc(pick(m, 'profileId') ?? '–')],
    ['recipe', (m) => esc(pick(m, 'recipeId') ?? '–')],
    ['kind', (m) => esc(pick(m, 'kind') ?? '–')],
    ['role', (m) => esc(pick(m, 'role') ?? '–')],
    ['size', (m) => bytes(pick(m, 'size', 'sizeBytes'))],
    ['accuracy', (m) => pct(pick(m, 'metrics.accuracy', 'metrics.studentInt8', 'metrics.studentFp32'))],
    ['companions', (m) => esc((pick(m, 'companions') ?? []).map((c) => c.role).join(', ') || '–')],
    ['training job', (m) => esc(pick(m, 'lineage.jobId', 'jobId') ?? '–')],
    ['created', (m) => esc(when(pick(m, 'createdAt')))],
    ['', (m) => `<a href="#/models/${encodeURIComponent(modelId(m))}/report">report</a>`],
  ], 'id="models"')}</div>`;
}

/** Per-layer quantization error (SQNR, dB; lower is worse), outlier layers in red. */
export function layerErrorChart(recipeId, diag) {
  const layers = diag?.layers ?? [];
  if (!layers.length) return '';
  return `<h3>${esc(recipeId)}: per-layer quantization error</h3>${barChart(
    layers.map((l) => ({ label: l.layer, value: l.sqnrDb, color: l.outlier ? '#dc2626' : l.quantized ? COLORS[0] : '#94a3b8', title: `${l.layer} (${l.opType}): SQNR ${num(l.sqnrDb, 1)} dB, accumulated ${num(l.accumulatedSqnrDb, 1)} dB, cosine ${num(l.cosine, 4)}${l.outlier ? ', outlier' : ''}${l.quantized ? '' : ', kept in float'}` })),
    { name: `layer-error-${recipeId}`, yLabel: 'SQNR (dB)' },
  )}<p class="muted">SQNR of each layer's own quantization (higher is better); red: activation outliers; grey: kept in float.${diag.floatLayers?.length ? ` Float layers: ${esc(diag.floatLayers.join(', '))}.` : ''}</p>`;
}

/** Diagnostics are one recipe's ({layers, ...}) or keyed by recipe. */
function diagnosticsCharts(diag, recipeId) {
  if (!diag || typeof diag !== 'object') return '<p class="muted">no diagnostics recorded</p>';
  if (Array.isArray(diag.layers)) return layerErrorChart(recipeId ?? 'model', diag);
  const html = Object.entries(diag).map(([r, d]) => layerErrorChart(r, d)).join('');
  return html || '<p class="muted">no per-layer diagnostics recorded</p>';
}

export async function modelPage({ args: [id] }) {
  const m = await optional(`/models/${encodeURIComponent(id)}`);
  if (m === null) return `<p><a href="#/models">← Models</a></p>${notAvailable('The model registry (/models/:id)')}`;
  // the registry answers a model with all its versions, newest first
  const versions = Array.isArray(m.versions) ? m.versions : [m];
  const latest = versions[0] ?? m;
  const metrics = pick(latest, 'metrics') ?? {};
  const lineage = pick(latest, 'lineage') ?? {};
  const bars = [];
  if (typeof metrics.teacherFp32 === 'number') bars.push({ label: 'teacher fp32', value: metrics.teacherFp32, color: '#64748b' });
  if (typeof metrics.studentFp32 === 'number') bars.push({ label: 'student fp32', value: metrics.studentFp32, color: '#94a3b8' });
  if (typeof metrics.studentHardFp32 === 'number') bars.push({ label: 'student hard-label', value: metrics.studentHardFp32, color: '#cbd5e1' });
  if (typeof metrics.studentInt8 === 'number') bars.push({ label: `int8 (${latest.recipeId ?? 'recipe'})`, value: metrics.studentInt8, color: COLORS[0] });
  if (typeof metrics.accuracy === 'number') bars.push({ label: 'this model, eval set', value: metrics.accuracy, color: COLORS[2] });
  Object.entries(metrics.recipes ?? {}).forEach(([r, v], i) => {
    if (typeof v.qatInt8 === 'number') bars.push({ label: `${r} QAT`, value: v.qatInt8, color: COLORS[i % COLORS.length] });
    if (typeof v.ptqInt8 === 'number') bars.push({ label: `${r} PTQ`, value: v.ptqInt8, color: COLORS[(i + 5) % COLORS.length] });
  });
  const parents = (lineage.parents ?? []).map((p) => `<a href="#/models/${encodeURIComponent(p.id)}">${esc(p.id)}${p.version ? ` v${esc(p.version)}` : ''}</a>`).join(', ');
  const siblings = lineage.jobId ? await optional(`/models?job=${encodeURIComponent(lineage.jobId)}&limit=100`) : null;
  const artifacts = siblings ? itemsOf(siblings) : versions;
  return `<p><a href="#/models">← Models</a> · <a href="#/models/${encodeURIComponent(id)}/report">fleet report</a></p>
    <h1>Model ${esc(id)} <span class="muted">${esc(pick(m, 'name') ?? '')} v${esc(pick(latest, 'version') ?? '?')}</span></h1>
    <div class="grid two">
      <div class="card"><h2>Lineage</h2>${kv([
        ['profile / recipe', `${pick(latest, 'profileId') ?? '–'} / ${pick(latest, 'recipeId') ?? '–'}`],
        ['kind / role', `${pick(latest, 'kind') ?? '–'} / ${pick(latest, 'role') ?? '–'}`],
        ['source', lineage.source ?? '–'],
        ['training job', lineage.jobId ?? '–'],
        ['parents', parents ? `<span>${parents}</span>` : 'none'],
        ['teacher', JSON.stringify(lineage.teacher ?? '–')],
        ['dataset', JSON.stringify(lineage.dataset ?? '–')],
        ['float layers', (lineage.floatLayers ?? []).join(', ') || 'none'],
        ['toolchain', lineage.versions ? Object.entries(lineage.versions).map(([k, v]) => `${k} ${v}`).join(', ') : '–'],
        ['sha256', pick(latest, 'sha256') ?? '–'],
        ['created', when(pick(latest, 'createdAt'))],
      ])}</div>
      <div class="card"><h2>Central metrics (eval-set accuracy)</h2>${bars.length ? barChart(bars, { name: 'central-metrics', yLabel: 'accuracy' }) : '<p class="muted">no metrics recorded</p>'}</div>
    </div>
    <div class="card"><h2>${siblings ? 'Artifacts of the same training job, per profile' : 'Versions'}</h2>${table(artifacts, [
      ['model', (a) => `<a href="#/models/${encodeURIComponent(modelId(a))}">${esc(modelId(a))}</a>`],
      ['version', (a) => esc(pick(a, 'version') ?? '–')],
      ['profile', (a) => esc(pick(a, 'profileId') ?? '–')],
      ['recipe', (a) => esc(pick(a, 'recipeId') ?? '–')],
      ['kind', (a) => esc(pick(a, 'kind') ?? '–')],
      ['size', (a) => bytes(pick(a, 'size', 'sizeBytes'))],
      ['accuracy', (a) => pct(pick(a, 'metrics.accuracy'))],
      ['sha256', (a) => `<span class="mono">${esc(String(pick(a, 'sha256') ?? '').slice(0, 16))}…</span>`],
    ])}</div>
    <div class="card"><h2>Diagnostics</h2>${diagnosticsCharts(pick(latest, 'diagnostics'), pick(latest, 'recipeId'))}</div>`;
}

const numCell = (k, v, d = 3, unit = '') => `<span data-k="${k}" data-v="${v ?? ''}">${v == null ? '–' : `${num(v, d)}${unit}`}</span>`;

/** The report's per-profile medians and per-device rows as tables ({profiles, devices} of /reports/models/:id). */
export function reportTables(report) {
  const profiles = Array.isArray(report?.profiles) ? report.profiles : [];
  const devices = Array.isArray(report?.devices) && report.devices.some((d) => 'p50Ms' in d) ? report.devices : [];
  if (!profiles.length && !devices.length) return '';
  return `<div class="card"><h2>Per profile (medians across devices)</h2>${table(profiles.map((p) => ({ ...p, __attrs: `data-profile="${esc(p.profileId)}"` })), [
      ['profile', (p) => esc(p.profileId)],
      ['devices', (p) => numCell('devices', p.devices)],
      ['versions', (p) => esc((p.versions ?? []).join(', '))],
      ['p50', (p) => numCell('medianP50Ms', p.medianP50Ms, 2, ' ms')],
      ['p90', (p) => numCell('medianP90Ms', p.medianP90Ms, 2, ' ms')],
      ['peak RSS', (p) => `<span data-k="medianPeakRssBytes" data-v="${p.medianPeakRssBytes ?? ''}">${bytes(p.medianPeakRssBytes)}</span>`],
      ['accuracy', (p) => numCell('medianAccuracy', p.medianAccuracy, 4)],
      ['central', (p) => numCell('centralAccuracy', p.centralAccuracy, 4)],
      ['Δ vs central', (p) => numCell('accuracyDeltaVsCentral', p.accuracyDeltaVsCentral, 4)],
      ['fp32 p50', (p) => numCell('medianFp32P50Ms', p.medianFp32P50Ms, 2, ' ms')],
      ['speed-up vs fp32', (p) => numCell('medianSpeedupVsFp32', p.medianSpeedupVsFp32, 2, 'x')],
    ], 'id="report-profiles"')}</div>
    <div class="card"><h2>Per device (newest report per device and version)</h2>${table(devices.map((d) => ({ ...d, __attrs: `data-device="${esc(d.deviceId)}" data-version="${esc(d.version)}"` })), [
      ['device', (d) => `<a href="#/devices/${encodeURIComponent(d.deviceId)}">${esc(d.deviceId)}</a>`],
      ['profile', (d) => esc(d.profileId ?? '–')],
      ['version', (d) => esc(d.version)],
      ['runtime', (d) => esc(d.runtime ?? '–')],
      ['p50', (d) => numCell('p50Ms', d.p50Ms, 2, ' ms')],
      ['p90', (d) => numCell('p90Ms', d.p90Ms, 2, ' ms')],
      ['p99', (d) => numCell('p99Ms', d.p99Ms, 2, ' ms')],
      ['throughput', (d) => numCell('throughputPerSecond', d.throughputPerSecond, 1, '/s')],
      ['peak RSS', (d) => `<span data-k="peakRssBytes" data-v="${d.peakRssBytes ?? ''}">${bytes(d.peakRssBytes)}</span>`],
      ['accuracy', (d) => numCell('accuracy', d.accuracy, 4)],
      ['agreement', (d) => numCell('agreement', d.agreement, 4)],
      ['fp32 p50', (d) => numCell('fp32P50Ms', d.fp32P50Ms, 2, ' ms')],
      ['vs fp32', (d) => numCell('speedupVsFp32', d.speedupVsFp32, 2, 'x')],
      ['int8 kernels', (d) => pct(d.integerKernelShare)],
      ['reported', (d) => esc(when(d.reportedAt))],
    ], 'id="report-devices"')}</div>`;
}

export function reportCharts(report) {
  const rows = reportRows(report);
  if (!rows.length) return '<p class="muted">no benchmark results reported yet</p>';
  const profiles = [...new Set(rows.map((r) => r.profileId))];
  const color = (p) => COLORS[profiles.indexOf(p) % COLORS.length];
  const boxes = latencyByProfile(rows).map((g) => ({ ...g, color: color(g.label) }));
  const scatters = accuracyVsLatency(rows);
  const speed = speedups(rows);
  const points = devicePoints(rows);
  return `${points.length ? `<div class="card"><h2>Each device: accuracy vs latency (int8)</h2>${scatterChart(points.map((p) => ({ ...p, color: color(p.profileId) })), { name: 'device-latency-accuracy', labels: false })}<p class="muted">${profiles.map((p) => `<span style="color:${color(p)}">●</span> ${esc(p)}`).join(' · ')}; ringed: the Pareto front across devices.</p></div>` : ''}
    <div class="card"><h2>Latency distribution per profile (int8)</h2>${boxPlot(boxes, { name: 'latency-by-profile' })}<p class="muted">box: p50 to p90 across devices; dashed: p99; whiskers: min to max; dots: each device's p50.</p></div>
    <div class="card"><h2>Accuracy vs latency, all recipes and baselines</h2><div class="grid two">${scatters.map((s) => `<div data-profile="${esc(s.profileId)}"><h3>${esc(s.profileId)}</h3>${scatterChart(s.points.map((p) => ({ ...p, color: p.baseline ? '#64748b' : color(s.profileId) })), { name: `pareto-${s.profileId}` })}</div>`).join('')}</div><p class="muted">Ringed points and the dashed step line: the Pareto front (no other variant is both faster and more accurate).</p></div>
    <div class="card"><h2>int8 vs fp32 speed-up per device</h2>${speed.length ? barChart(speed.map((s) => ({ label: s.deviceId, value: s.speedup, color: s.speedup < 1 ? '#dc2626' : color(s.profileId), title: `${s.deviceId} (${s.profileId}): ${num(s.speedup, 2)}x` })), { name: 'speedup', yLabel: 'fp32 p50 / int8 p50', ref: 1, refLabel: '1x (no gain)' }) : '<p class="muted">no device has both an fp32 and an int8 result</p>'}<p class="muted">Red: int8 slower than fp32 on that device — a finding to report.</p></div>`;
}

export async function modelReportPage({ args: [id] }) {
  const report = await optional(`/reports/models/${encodeURIComponent(id)}`);
  const head = `<p><a href="#/models/${encodeURIComponent(id)}">← Model ${esc(id)}</a></p><h1>Model report ${esc(id)}</h1>`;
  if (report === null) return head + notAvailable('Model reports (/reports/models/:id)');
  return head + `<p class="muted">${esc(report.devices?.length ?? 0)} device reports${report.version ? `, version ${esc(report.version)}` : ''}</p>` + reportTables(report) + reportCharts(report);
}
