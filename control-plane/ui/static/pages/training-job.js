// One training job (GET /training-jobs/:id): state, progress, loss and accuracy per epoch as charts (one line per
// phase), the trainer's log tail, the models it registered.
import { api } from '../api.js';
import { COLORS, lineChart } from '../charts.js';
import { html, nothing } from '../lit.js';
import { kv, num, pill, progressBar, secs, table, when } from '../dom.js';

/** Epoch points grouped into one series per phase (distill, qat:<recipe>...), x = the epoch number. */
export function epochSeries(history, value) {
  const by = new Map();
  for (const h of history) {
    const key = h.recipeId ? `${h.phase}:${h.recipeId}` : h.phase;
    const v = value(h);
    if (v === null || !Number.isFinite(v)) continue;
    (by.get(key) ?? by.set(key, []).get(key)).push({ x: h.epoch, y: v });
  }
  return [...by].map(([name, points], i) => ({ name, points, color: COLORS[i % COLORS.length] }));
}

export async function trainingJobPage({ args: [id], refresh }) {
  const j = await api(`/training-jobs/${encodeURIComponent(id)}`);
  const p = j.progress;
  const history = p?.epochHistory ?? [];
  const cancel = async () => {
    if (!confirm(`cancel training job ${id}?`)) return;
    try { await api(`/training-jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }); } catch (e) { alert(e.message); }
    refresh();
  };
  return html`<p><a href="#/training">← Training jobs</a></p>
    <h1 id="job" data-job=${j.id}>Training job ${j.name} <span class="muted">${j.id}</span> ${pill(j.state)}
      ${j.state === 'queued' || j.state === 'running' ? html`<button class="danger" @click=${cancel}>cancel</button>` : nothing}</h1>
    ${j.error ? html`<div class="card error" id="job-error">${j.error.code}: ${j.error.message}</div>` : nothing}
    <div class="grid two">
      <div class="card"><h2>Job</h2>${kv([
        ['profiles', j.profiles.join(', ') || '–'],
        ['recipes', j.recipes.join(', ') || '–'],
        ['created', when(j.createdAt)],
        ['started', when(j.startedAt) || '–'],
        ['finished', when(j.finishedAt) || '–'],
        ['phase', p ? `${p.phase}${p.recipeId ? ` [${p.recipeId}]` : ''} · epoch ${p.epoch}/${p.epochs}` : '–'],
        ['progress', p ? html`${progressBar(p.totalSteps ? p.step / p.totalSteps : 0)} <span class="muted">step ${p.step}/${p.totalSteps} · loss ${num(p.loss, 4)} · eta ${secs(p.etaSeconds ?? undefined)}</span>` : '–'],
        ['whole job', p && typeof p.jobProgress === 'number' ? html`${progressBar(p.jobProgress)} <span class="muted">eta ${secs(p.jobEtaSeconds ?? undefined)}</span>` : '–'],
        ['phases done', p?.phasesDone.join(', ') || '–'],
        ['models', j.models.length ? j.models.map((m) => html`<a href="#/models/${encodeURIComponent(m.id)}">${m.id}</a> `) : '–'],
      ], { id: 'job-summary' })}</div>
      <div class="card"><h2>Per epoch</h2>${history.length
        ? html`<h3>loss</h3>${lineChart(epochSeries(history, (h) => h.loss), { name: 'epoch-loss', xLabel: 'epoch' })}
          <h3>held-out accuracy</h3>${lineChart(epochSeries(history, (h) => h.accuracy), { name: 'epoch-accuracy', xLabel: 'epoch' })}`
        : html`<p class="muted">no epoch finished yet</p>`}</div>
    </div>
    <div class="card"><h2>Trainer log (last lines)</h2>${table(j.logTail.slice().reverse(), [['at', (l) => when(l.ts)], ['level', (l) => l.level], ['message', (l) => html`<span class="mono">${l.message}</span>`]], { id: 'job-log' })}</div>`;
}
