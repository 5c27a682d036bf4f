// Training jobs (GET /training-jobs), newest first, with live progress.
import { optional } from '../api.js';
import { sparkline } from '../charts.js';
import { html } from '../lit.js';
import { notAvailable, num, pill, progressBar, secs, table, when } from '../dom.js';

export async function trainingPage() {
  const body = await optional('/training-jobs?limit=200');
  if (body === null) return html`<h1>Training jobs</h1>${notAvailable('Training jobs (/training-jobs)')}`;
  const p = (j) => j.progress;
  return html`<h1>Training jobs <a class="button" href="#/training/new" id="new-job">New training job</a></h1><div class="card">${table(body.items, [
    ['job', (j) => html`<a href="#/training/${encodeURIComponent(j.id)}">${j.id}</a>`],
    ['name', (j) => j.name],
    ['state', (j) => pill(j.state)],
    ['phase', (j) => (p(j) ? `${p(j).phase}${p(j).recipeId ? ` [${p(j).recipeId}]` : ''}` : '–')],
    ['epoch', (j) => (p(j) ? `${p(j).epoch}/${p(j).epochs}` : '–')],
    ['progress', (j) => (p(j) ? html`${progressBar(p(j).totalSteps ? p(j).step / p(j).totalSteps : 0)}<span class="muted">step ${p(j).step}/${p(j).totalSteps}</span>` : '–')],
    ['loss', (j) => html`${num(p(j)?.loss, 4)} ${sparkline((p(j)?.epochHistory ?? []).map((h) => h.loss), { name: 'loss' })}`],
    ['accuracy', (j) => num(p(j)?.accuracy, 4)],
    ['eta', (j) => secs(p(j)?.etaSeconds ?? undefined)],
    ['models', (j) => (j.models.length ? j.models.map((m) => html`<a href="#/models/${encodeURIComponent(m.id)}">${m.id}</a> `) : '–')],
    ['started', (j) => when(j.startedAt ?? j.createdAt)],
    ['error', (j) => html`<span class="error">${j.error?.message ?? ''}</span>`],
  ], { id: 'jobs', row: (j) => ({ job: j.id }) })}</div>`;
}
