import { itemsOf, optional, pick } from '../api.js';
import { sparkline } from '../charts.js';
import { esc, notAvailable, num, pill, progressBar, secs, table, when } from '../dom.js';

export async function trainingPage() {
  const body = await optional('/training-jobs');
  if (body === null) return `<h1>Training jobs</h1>${notAvailable('Training jobs (/training-jobs)')}`;
  const jobs = itemsOf(body);
  const progress = (j) => pick(j, 'progress', 'lastProgress', 'latestProgress') ?? {};
  return `<h1>Training jobs</h1><div class="card">${table(
    jobs.map((j) => ({ ...j, __attrs: `data-job="${esc(pick(j, 'id', 'jobId'))}"` })),
    [
      ['job', (j) => esc(pick(j, 'id', 'jobId'))],
      ['state', (j) => pill(pick(j, 'state', 'status'))],
      ['phase', (j) => esc(`${progress(j).phase ?? '–'}${progress(j).recipeId ? ` [${progress(j).recipeId}]` : ''}`)],
      ['epoch', (j) => esc(`${progress(j).epoch ?? '–'}/${progress(j).epochs ?? '–'}`)],
      ['progress', (j) => `${progressBar(progress(j).totalSteps ? progress(j).step / progress(j).totalSteps : 0)}<span class="muted">step ${esc(progress(j).step ?? '–')}/${esc(progress(j).totalSteps ?? '–')}</span>`],
      ['loss', (j) => `${num(progress(j).loss, 4)} ${sparkline((pick(j, 'history', 'lossHistory') ?? []).map((h) => (typeof h === 'number' ? h : h.loss)), { name: 'loss' })}`],
      ['accuracy', (j) => num(progress(j).accuracy, 4)],
      ['eta', (j) => secs(progress(j).etaSeconds)],
      ['models', (j) => (pick(j, 'models') ?? []).map((m) => `<a href="#/models/${encodeURIComponent(m.id)}">${esc(m.id)}</a>`).join(' ') || '–'],
      ['started', (j) => esc(when(pick(j, 'startedAt', 'createdAt')))],
      ['error', (j) => `<span class="error">${esc(pick(j, 'error.message', 'error') ?? '')}</span>`],
    ],
    'id="jobs"',
  )}</div>`;
}
