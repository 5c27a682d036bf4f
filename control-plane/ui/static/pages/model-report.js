// What the devices measured for one model (GET /reports/models/:id), labelled by the model's kind: an fp32 model's
// report says fp32 and has no int8-kernel column.
import { optional } from '../api.js';
import { COLORS, barChart, boxPlot, scatterChart } from '../charts.js';
import { html, nothing, styleMap } from '../lit.js';
import { bytes, notAvailable, num, pct, table, when } from '../dom.js';
import { accuracyVsLatency, devicePoints, latencyByProfile, reportRows, speedups } from '../report.js';

const numCell = (k, v, d = 3, unit = '') => html`<span data-k=${k} data-v=${v ?? ''}>${v == null ? '–' : `${num(v, d)}${unit}`}</span>`;

/** The report's per-profile medians and per-device rows as tables. */
export function reportTables(report, kind) {
  if (!report.profiles.length && !report.devices.length) return nothing;
  const deviceColumns = [
    ['device', (d) => html`<a href="#/devices/${encodeURIComponent(d.deviceId)}">${d.deviceId}</a>`],
    ['profile', (d) => d.profileId ?? '–'],
    ['version', (d) => d.version],
    ['runtime', (d) => d.runtime],
    ['p50', (d) => numCell('p50Ms', d.p50Ms, 2, ' ms')],
    ['p90', (d) => numCell('p90Ms', d.p90Ms, 2, ' ms')],
    ['p99', (d) => numCell('p99Ms', d.p99Ms, 2, ' ms')],
    ['throughput', (d) => numCell('throughputPerSecond', d.throughputPerSecond, 1, '/s')],
    ['peak RSS', (d) => html`<span data-k="peakRssBytes" data-v=${d.peakRssBytes}>${bytes(d.peakRssBytes)}</span>`],
    ['accuracy', (d) => numCell('accuracy', d.accuracy, 4)],
    ['agreement', (d) => numCell('agreement', d.agreement, 4)],
    ['fp32 p50', (d) => numCell('fp32P50Ms', d.fp32P50Ms, 2, ' ms')],
    ['vs fp32', (d) => numCell('speedupVsFp32', d.speedupVsFp32, 2, 'x')],
    ...(kind === 'int8' ? [['int8 kernels', (d) => pct(d.integerKernelShare)]] : []),
    ['reported', (d) => when(d.reportedAt)],
  ];
  return html`<div class="card"><h2>Per profile (medians across devices)</h2>${table(report.profiles, [
      ['profile', (p) => p.profileId],
      ['devices', (p) => numCell('devices', p.devices)],
      ['versions', (p) => p.versions.join(', ')],
      ['p50', (p) => numCell('medianP50Ms', p.medianP50Ms, 2, ' ms')],
      ['p90', (p) => numCell('medianP90Ms', p.medianP90Ms, 2, ' ms')],
      ['peak RSS', (p) => html`<span data-k="medianPeakRssBytes" data-v=${p.medianPeakRssBytes ?? ''}>${bytes(p.medianPeakRssBytes ?? undefined)}</span>`],
      ['accuracy', (p) => numCell('medianAccuracy', p.medianAccuracy, 4)],
      ['central', (p) => numCell('centralAccuracy', p.centralAccuracy, 4)],
      ['Δ vs central', (p) => numCell('accuracyDeltaVsCentral', p.accuracyDeltaVsCentral, 4)],
      ['fp32 p50', (p) => numCell('medianFp32P50Ms', p.medianFp32P50Ms, 2, ' ms')],
      ['speed-up vs fp32', (p) => numCell('medianSpeedupVsFp32', p.medianSpeedupVsFp32, 2, 'x')],
    ], { id: 'report-profiles', row: (p) => ({ profile: p.profileId }) })}</div>
    <div class="card"><h2>Per device (newest report per device and version)</h2>${table(report.devices, deviceColumns, { id: 'report-devices', row: (d) => ({ device: d.deviceId, version: d.version }) })}</div>`;
}

export function reportCharts(report, kind) {
  const rows = reportRows(report, kind);
  if (!rows.length) return html`<p class="muted">no benchmark results reported yet</p>`;
  const profiles = [...new Set(rows.map((r) => r.profileId))];
  const color = (p) => COLORS[profiles.indexOf(p) % COLORS.length];
  const boxes = latencyByProfile(rows).map((g) => ({ ...g, color: color(g.label) }));
  const scatters = accuracyVsLatency(rows);
  const speed = speedups(report);
  const points = devicePoints(rows);
  return html`${points.length ? html`<div class="card"><h2>Each device: accuracy vs latency (${kind})</h2>${scatterChart(points.map((p) => ({ ...p, color: color(p.profileId) })), { name: 'device-latency-accuracy', labels: false })}<p class="muted">${profiles.map((p, i) => html`${i ? ' · ' : ''}<span style=${styleMap({ color: color(p) })}>●</span> ${p}`)}; ringed: the Pareto front across devices.</p></div>` : nothing}
    <div class="card"><h2>Latency distribution per profile (${kind})</h2>${boxPlot(boxes, { name: 'latency-by-profile' })}<p class="muted">box: p50 to p90 across devices; dashed: p99; whiskers: min to max; dots: each device's p50.</p></div>
    <div class="card"><h2>Accuracy vs latency: the model and its fp32 baseline</h2><div class="grid two">${scatters.map((s) => html`<div data-profile=${s.profileId}><h3>${s.profileId}</h3>${scatterChart(s.points.map((p) => ({ ...p, color: p.baseline ? '#64748b' : color(s.profileId) })), { name: `pareto-${s.profileId}` })}</div>`)}</div><p class="muted">Ringed points and the dashed step line: the Pareto front (no other variant is both faster and more accurate).</p></div>
    <div class="card"><h2>${kind} vs fp32 baseline: speed-up per device</h2>${speed.length ? barChart(speed.map((s) => ({ label: s.deviceId, value: s.speedup, color: s.speedup < 1 ? '#dc2626' : color(s.profileId), title: `${s.deviceId} (${s.profileId}): ${num(s.speedup, 2)}x` })), { name: 'speedup', yLabel: 'fp32 p50 / model p50', ref: 1, refLabel: '1x (no gain)' }) : html`<p class="muted">no device measured an fp32 baseline beside this model</p>`}<p class="muted">Red: slower than fp32 on that device — a finding to report.</p></div>`;
}

export async function modelReportPage({ args: [id] }) {
  const enc = encodeURIComponent(id);
  const [report, model] = await Promise.all([optional(`/reports/models/${enc}`), optional(`/models/${enc}`)]);
  const head = html`<p><a href="#/models/${enc}">← Model ${id}</a></p><h1>Model report ${id}</h1>`;
  if (report === null) return html`${head}${notAvailable('Model reports (/reports/models/:id)')}`;
  const kind = model?.versions?.[0]?.kind ?? 'int8';
  return html`${head}<p class="muted" id="report-kind" data-kind=${kind}>${kind} model · ${report.devices.length} device reports${report.version ? `, version ${report.version}` : ''}</p>${reportTables(report, kind)}${reportCharts(report, kind)}`;
}
