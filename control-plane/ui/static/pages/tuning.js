// One tuning (GET /tunings/:id): per profile the measured Pareto front (median p50 vs worst-device accuracy) with the
// chosen point marked, every point a link to its model version; the candidate table with each canary's numbers and
// why each loser lost; approve / cancel.
import { api, optional } from '../api.js';
import { COLORS, ticks } from '../charts.js';
import { html, nothing, styleMap, svg } from '../lit.js';
import { bytes, kv, notAvailable, num, pct, pill, table, when } from '../dom.js';

const STATUS_COLOR = { chosen: '#16a34a', pareto: COLORS[0], dominated: '#94a3b8', discarded: '#dc2626', 'not-measured': '#cbd5e1' };
const modelHref = (c) => `#/models/${encodeURIComponent(c.modelId)}`;
const message = { text: '', tuning: '' };

/** The measured points of one profile; discarded ones are drawn hollow, the front as a dashed step line. */
export function paretoPlot(profileId, candidates, decision) {
  const pts = candidates.filter((c) => c.aggregate).map((c) => ({ c, x: c.aggregate.medianP50, y: c.aggregate.worstAccuracy ?? 0 }));
  if (!pts.length) return html`<p class="muted" data-no-points=${profileId}>nothing measured for ${profileId}</p>`;
  const w = 520, h = 300, m = { l: 60, r: 16, t: 16, b: 44 };
  const tx = ticks(0, Math.max(...pts.map((p) => p.x)) * 1.1), ty = ticks(Math.max(0, Math.min(...pts.map((p) => p.y)) - 0.02), Math.min(1, Math.max(...pts.map((p) => p.y)) + 0.02));
  const x = (v) => m.l + ((w - m.l - m.r) * (v - tx[0])) / (tx[tx.length - 1] - tx[0] || 1);
  const y = (v) => m.t + (h - m.t - m.b) * (1 - (v - ty[0]) / (ty[ty.length - 1] - ty[0] || 1));
  const front = decision.front.map((k) => pts.find((p) => p.c.key === k)).filter(Boolean);
  let d = '';
  if (front.length > 1) {
    d = `M${x(front[0].x)},${y(front[0].y)}`;
    for (const p of front.slice(1)) d += ` H${x(p.x)} V${y(p.y)}`;
  }
  const fmt = (v) => num(v, v < 1 ? 3 : 2);
  return html`<svg class="chart" data-chart=${`tuning-pareto-${profileId}`} viewBox="0 0 ${w} ${h}" width="100%" style=${styleMap({ maxWidth: `${w}px` })} role="img">
    ${ty.map((v) => svg`<line x1=${m.l} x2=${w - m.r} y1=${y(v)} y2=${y(v)} class="grid"/><text x=${m.l - 6} y=${y(v) + 4} text-anchor="end" class="tick">${fmt(v)}</text>`)}
    ${tx.map((v) => svg`<text x=${x(v)} y=${h - m.b + 16} text-anchor="middle" class="tick">${fmt(v)}</text>`)}
    <text x=${(m.l + w - m.r) / 2} y=${h - 6} text-anchor="middle" class="axis-label">median p50 over canaries (ms)</text>
    <text transform="translate(12 ${h / 2}) rotate(-90)" text-anchor="middle" class="axis-label">worst-device accuracy</text>
    ${d ? svg`<path class="pareto" d=${d}/>` : nothing}
    ${pts.map((p) => {
      const chosen = p.c.status === 'chosen';
      const color = STATUS_COLOR[p.c.status] ?? COLORS[0];
      return svg`<a href=${modelHref(p.c)} data-point=${p.c.key} data-status=${p.c.status ?? ''}>
        ${chosen ? svg`<circle cx=${x(p.x)} cy=${y(p.y)} r="11" fill="none" stroke="#16a34a" stroke-width="2.5" class="chosen-ring"/>` : nothing}
        <circle class=${decision.front.includes(p.c.key) ? 'pt front' : 'pt'} cx=${x(p.x)} cy=${y(p.y)} r="6" fill=${p.c.status === 'discarded' ? 'white' : color} stroke=${color} stroke-width="2"><title>${`${p.c.key} (${p.c.modelId} v${p.c.version}): p50 ${fmt(p.x)} ms, worst accuracy ${pct(p.c.aggregate.worstAccuracy)}, ${p.c.status}${p.c.reasons.length ? ` — ${p.c.reasons.join('; ')}` : ''}`}</title></circle>
        <text x=${x(p.x) + 9} y=${y(p.y) - 8} class="tick pt-label">${p.c.key}${chosen ? ' ✓' : ''}</text></a>`;
    })}</svg>`;
}

function candidateTable(profileId, candidates) {
  return table(candidates, [
    ['candidate', (c) => html`<a href=${modelHref(c)}>${c.key}</a> <span class="muted">${c.modelId} v${c.version}</span>`],
    ['status', (c) => pill(c.status ?? 'open')],
    ['PyTorch acc', (c) => pct(c.pytorchAccuracy)],
    ['runtime acc (host)', (c) => pct(c.runtimeAccuracy)],
    ['worst device acc', (c) => pct(c.aggregate?.worstAccuracy)],
    ['median p50', (c) => (c.aggregate ? `${num(c.aggregate.medianP50, 4)} ms` : '–')],
    ['median p90', (c) => (c.aggregate ? `${num(c.aggregate.medianP90, 4)} ms` : '–')],
    ['peak RSS', (c) => bytes(c.aggregate?.peakRssBytes)],
    ['int8 share', (c) => pct(c.aggregate?.integerKernelShare)],
    ['devices', (c) => html`${c.measurements.map((m) => html`<a href="#/devices/${encodeURIComponent(m.deviceId)}">${m.deviceId}</a> ${num(m.p50, 4)} ms ${pct(m.accuracy)}<br>`)}${c.failures.map((f) => html`<a href="#/devices/${encodeURIComponent(f.deviceId)}">${f.deviceId}</a> <span class="error">failed: ${f.reason}</span><br>`)}${c.missing.map((f) => html`<a href="#/devices/${encodeURIComponent(f.deviceId)}">${f.deviceId}</a> <span class="muted">missing: ${f.reason}</span><br>`)}`],
    ['why', (c) => c.reasons.join('; ')],
    ['device reports', (c) => html`<a href="#/models/${encodeURIComponent(c.modelId)}/report">report</a>`],
  ], { id: `tuning-candidates-${profileId}`, row: (c) => ({ candidate: c.key, status: c.status ?? '' }) });
}

export async function tuningPage({ args: [id], refresh }) {
  const enc = encodeURIComponent(id);
  const t = await optional(`/tunings/${enc}`);
  const back = html`<p><a href="#/tunings">← Tunings</a></p>`;
  if (t === null) return html`${back}${notAvailable('Tunings (/tunings/:id)')}`;
  const act = async (a) => {
    try {
      await api(`/tunings/${enc}/${a}`, { method: 'POST', body: {} });
      Object.assign(message, { text: `${a} done`, tuning: id });
    } catch (e) {
      Object.assign(message, { text: `${a}: ${e.message}`, tuning: id });
    }
    refresh();
  };
  const actions = [...(t.state === 'awaiting-approval' ? ['approve'] : []), ...(['training', 'registering', 'evaluating'].includes(t.state) ? ['cancel'] : [])];
  const e = t.evaluations;
  return html`${back}<h1 id="tuning" data-tuning=${t.id}>Tuning ${t.name} <span class="muted">${t.id}</span> <span id="tuning-state">${pill(t.state)}</span></h1>
    <div class="row spaced" id="actions">${actions.map((a) => html`<button data-action=${a} class=${a === 'cancel' ? 'danger' : ''} @click=${() => act(a)}>${a === 'approve' ? 'approve: roll the choices out' : a}</button>`)}
      <span id="action-msg" class="muted">${message.tuning === id ? message.text : ''}</span></div>
    ${t.error ? html`<div class="card error">${t.error.code}: ${t.error.message}</div>` : nothing}
    <div class="card">${kv([
      ['objective', t.objective],
      ['constraints', `accuracy drop ≤ ${pct(t.constraints.maxAccuracyDrop)} vs ${t.constraints.against}${t.constraints.maxP50Ms ? `, p50 ≤ ${t.constraints.maxP50Ms} ms` : ''}${t.constraints.maxPeakRssBytes ? `, peak memory ≤ ${bytes(t.constraints.maxPeakRssBytes)}` : ''}`],
      ['evaluations', `${e.done} done, ${e.failed} failed, ${e.missing} missing, ${e.sent} running, ${e.pending} pending`],
      ['training job', t.trainingJobId ? html`<a href="#/training/${encodeURIComponent(t.trainingJobId)}">${t.trainingJobId}</a>` : '–'],
      ['rollout', t.rolloutId ? html`<a href="#/rollouts/${encodeURIComponent(t.rolloutId)}">${t.rolloutId}</a>` : t.autoRollout ? 'automatic once decided' : 'on approval'],
      ['created', when(t.createdAt)],
      ['notes', t.notes.length ? t.notes.map((n) => html`${n}<br>`) : '–'],
    ])}</div>
    ${t.profiles.map((p) => {
      const d = t.decisions.find((x) => x.profileId === p);
      const cands = t.candidates.filter((c) => c.profileId === p);
      return html`<div class="card" data-profile=${p}><h2>${p}</h2>
        ${d ? html`<p id=${`decision-${p}`} data-chosen=${d.chosen?.key ?? ''}><b>${d.chosen ? d.chosen.key : 'nothing chosen'}</b>${d.measured ? '' : html` <span class="pill">not measured</span>`}: ${d.reason}</p>
          <p class="muted">canaries: ${d.canaries.map((c, i) => html`${i ? ', ' : ''}<a href="#/devices/${encodeURIComponent(c)}">${c}</a>`)}${d.missing.length ? html`; missing: ${d.missing.join('; ')}` : ''}</p>` : html`<p class="muted">not decided yet</p>`}
        ${d ? paretoPlot(p, cands, d) : nothing}
        <p class="muted">Each point is a candidate (click: its model version); green ring: the chosen one; dashed: the measured Pareto front; hollow red: discarded by a constraint.</p>
        ${candidateTable(p, cands)}</div>`;
    })}`;
}
