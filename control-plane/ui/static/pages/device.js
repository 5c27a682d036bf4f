// One device: GET /devices/:id (facts, profile and which rules each profile failed, heartbeat, presence, recent
// heartbeats for the charts) and GET /devices/:id/installs (installs, their history, benchmark reports).
import { api, optional } from '../api.js';
import { COLORS, barChart, lineChart, timeline } from '../charts.js';
import { html, nothing } from '../lit.js';
import { ago, bytes, flatten, kv, labels, modelRef, notAvailable, num, pct, pill, secs, table, when } from '../dom.js';

/** Presence segments, oldest first, from the newest-first status history. */
export function presenceSegments(history, now = Date.now()) {
  const asc = [...history].sort((a, b) => a.at - b.at);
  return asc.map((h, i) => ({ from: h.at, to: i + 1 < asc.length ? asc[i + 1].at : now, status: h.status, reason: h.reason }));
}

/** Why this profile: the chosen one, and for every other profile the match rules its facts failed. */
function profileWhy(d) {
  if (!d.facts) return html`<p class="muted">no facts yet (the device has not announced itself)</p>`;
  const others = d.profileMatches.filter((m) => m.profileId !== d.profileId);
  return html`<div id="profile-why">
    <p>${d.profileReason === 'fallback'
      ? html`Fell back to <b>${d.profileId}</b>: no specific profile matched.`
      : d.profileReason === 'override' ? html`<b>${d.profileId}</b> was chosen by an operator.` : html`<b>${d.profileId ?? 'none'}</b> (${d.profileReason ?? 'no match'}).`}</p>
    ${table(others, [
      ['profile', (m) => m.profileId],
      ['priority', (m) => m.priority],
      ['matches', (m) => (m.matches ? 'yes' : 'no')],
      ['failed rules', (m) => (m.failedRules.length ? m.failedRules.join(', ') : '–')],
    ], { id: 'profile-matches', row: (m) => ({ profile: m.profileId }) })}</div>`;
}

/** The newest heartbeat, in words and units. */
function heartbeatRows(hb) {
  return [
    ['received', `${when(hb.ts)} (${ago(hb.ts)})`],
    ['agent version', hb.agentVersion],
    ['uptime', secs(hb.uptimeSeconds)],
    ['load (1 min)', num(hb.load1, 2)],
    ['CPU', hb.cpuPercent === null ? '–' : `${num(hb.cpuPercent, 1)}%`],
    ['memory', `${bytes(hb.memUsedBytes)} of ${bytes(hb.memTotalBytes)}`],
    ['temperature', hb.temperatureC === null ? 'not reported' : `${num(hb.temperatureC, 1)} °C`],
    ['active model', modelRef(hb.activeModel)],
  ];
}

function heartbeatCharts(points) {
  if (points.length < 2) return html`<p class="muted">fewer than two heartbeats recorded yet</p>`;
  const series = (name, f) => [{ name, points: points.map((p) => ({ x: p.at, y: f(p) })).filter((p) => p.y !== null && Number.isFinite(p.y)) }];
  const temps = series('temperature', (p) => p.temperatureC);
  return html`<div class="grid three" id="heartbeat-charts">
    <div><h3>load (1 min)</h3>${lineChart(series('load', (p) => p.load1), { name: 'hb-load', time: true, yMin: 0 })}</div>
    <div><h3>memory used (%)</h3>${lineChart(series('memory', (p) => (p.memTotalBytes ? (100 * p.memUsedBytes) / p.memTotalBytes : null)), { name: 'hb-memory', time: true, yMin: 0, yMax: 100, unit: '%' })}</div>
    <div><h3>temperature (°C)</h3>${temps[0].points.length ? lineChart(temps, { name: 'hb-temperature', time: true, unit: ' °C' }) : html`<p class="muted" data-chart-missing="hb-temperature">the device reports no temperature</p>`}</div>
  </div>`;
}

function installsSection(body) {
  if (body === null) return notAvailable('Model installs and benchmark history (/devices/:id/installs)');
  const { installs, benchmarks, history } = body;
  if (!installs.length) return html`<p class="muted" id="no-installs">no models installed yet</p>`;
  // the newest benchmark per model version
  const latest = new Map();
  for (const b of benchmarks) if (!latest.has(`${b.modelId}@${b.version}`)) latest.set(`${b.modelId}@${b.version}`, b);
  const bench = [...latest.values()];
  return html`
    ${table(installs, [
      ['model', (r) => modelRef(r)],
      ['state', (r) => pill(r.state)],
      ['progress', (r) => (r.progress === null ? '–' : pct(r.progress))],
      ['rollout', (r) => (r.rolloutId ? html`<a href="#/rollouts/${encodeURIComponent(r.rolloutId)}">${r.rolloutId}</a>` : 'direct')],
      ['reason', (r) => html`<span class="error">${r.reason ?? ''}</span>`],
      ['updated', (r) => when(r.updatedAt)],
    ], { id: 'installs', row: (r) => ({ model: r.modelId, version: r.version }) })}
    <h3>Benchmarks (newest per model version)</h3>
    ${bench.length
      ? html`${barChart(bench.map((b, i) => ({ label: `${b.modelId} v${b.version}`, value: b.result.latencyMs.p50, color: COLORS[i % COLORS.length] })), { name: 'install-latency', yLabel: 'p50 latency (ms)', height: 160 })}
        ${table(bench, [
          ['model', (b) => modelRef(b)],
          ['runtime', (b) => b.result.runtime],
          ['p50', (b) => `${num(b.result.latencyMs.p50, 2)} ms`],
          ['p99', (b) => `${num(b.result.latencyMs.p99, 2)} ms`],
          ['throughput', (b) => `${num(b.result.throughputPerSecond, 1)}/s`],
          ['peak RSS', (b) => bytes(b.result.peakRssBytes)],
          ['accuracy', (b) => pct(b.result.accuracy)],
          ['agreement', (b) => pct(b.result.agreement)],
          ['fp32 p50', (b) => (b.baseline ? `${num(b.baseline.latencyMs.p50, 2)} ms` : '–')],
          ['vs fp32', (b) => (b.speedup === null ? '–' : `${num(b.speedup, 2)}x`)],
          ['int8 kernels', (b) => pct(b.result.integerKernelShare)],
          ['at', (b) => when(b.at)],
        ], { id: 'benchmarks', row: (b) => ({ model: b.modelId, version: b.version }) })}`
      : html`<p class="muted">no benchmark reports yet</p>`}
    <h3>Install history</h3>
    ${table(history.slice(0, 30), [['at', (e) => when(e.at)], ['model', (e) => modelRef(e)], ['state', (e) => pill(e.state)], ['reason', (e) => e.reason ?? '']], { id: 'install-history' })}`;
}

export async function devicePage({ args: [id], refresh }) {
  const enc = encodeURIComponent(id);
  const [d, installs, profiles] = await Promise.all([api(`/devices/${enc}`), optional(`/devices/${enc}/installs`), api('/profiles')]);
  const facts = flatten(d.facts ?? {}).map(([k, v]) => [k, k === 'memoryBytes' ? bytes(v) : v]);
  const override = async (e) => {
    const v = e.target.value;
    e.target.blur();
    try {
      await api(`/devices/${enc}`, { method: 'PATCH', body: { profileOverride: v || null } });
      document.getElementById('override-msg').textContent = '';
    } catch (err) {
      document.getElementById('override-msg').textContent = err.message;
    }
    refresh();
  };
  return html`
    <p><a href="#/fleet">← Fleet</a></p>
    <h1>${d.id} ${pill(d.status)}</h1>
    <div class="stats">
      <div class="stat" data-stat="profile"><div class="v">${d.profileId ?? '–'}</div><div class="k">profile (${d.profileReason ?? 'no match'})</div></div>
      <div class="stat" data-stat="agent"><div class="v">${d.agentVersion ?? '–'}</div><div class="k">agent version</div></div>
      <div class="stat" data-stat="last-seen"><div class="v">${ago(d.lastSeen)}</div><div class="k">last seen</div></div>
      <div class="stat" data-stat="births"><div class="v">${d.births}</div><div class="k">births</div></div>
    </div>
    <div class="grid two">
      <div class="card"><h2>Profile</h2>
        ${kv([['profile', d.profileId ?? 'none'], ['operator override', d.profileOverride ?? 'none (matched)'], ['labels', labels(d.labels)], ['registered', when(d.createdAt)], ['revoked', d.revokedAt ? when(d.revokedAt) : 'no'], ['current model', modelRef(d.currentModel)]], { id: 'profile' })}
        ${d.revokedAt ? nothing : html`<div class="row spaced">
          <label>pin to profile <select id="override" @change=${override}><option value="">(match automatically)</option>${profiles.items.map((p) => html`<option value=${p.id} ?selected=${p.id === d.profileOverride}>${p.id}</option>`)}</select></label>
          <span id="override-msg" class="error"></span></div>`}
        <h3>Why this profile</h3>${profileWhy(d)}
      </div>
      <div class="card"><h2>Facts</h2><div id="facts">${kv(facts)}</div></div>
    </div>
    <div class="grid two">
      <div class="card"><h2>Presence</h2>${timeline(presenceSegments(d.statusHistory), { name: 'presence' })}
        ${table(d.statusHistory.slice(0, 12), [['at', (h) => when(h.at)], ['status', (h) => pill(h.status)], ['reason', (h) => h.reason]], { id: 'presence-history' })}</div>
      <div class="card"><h2>Last heartbeat</h2>${d.heartbeat ? kv(heartbeatRows(d.heartbeat), { id: 'heartbeat' }) : html`<p class="muted">none yet</p>`}</div>
    </div>
    <div class="card"><h2>Health over time</h2>${heartbeatCharts(d.heartbeats ?? [])}</div>
    <div class="card" id="models-card"><h2>Models and benchmarks</h2>${installsSection(installs)}</div>`;
}
