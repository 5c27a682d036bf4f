// Tunings: the list (GET /tunings), newest first. A tuning measures candidate recipes on canary devices per profile.
import { optional } from '../api.js';
import { html } from '../lit.js';
import { notAvailable, pill, table, when } from '../dom.js';

export async function tuningsPage() {
  const body = await optional('/tunings');
  if (body === null) return html`<h1>Tunings</h1>${notAvailable('Tunings (/tunings)')}`;
  return html`<h1>Tunings</h1><p class="muted">Start one with <code>edgefleet tune body.json</code> or POST /tunings.</p><div class="card">${table(body.items, [
    ['tuning', (t) => html`<a href="#/tunings/${encodeURIComponent(t.id)}">${t.id}</a>`],
    ['name', (t) => t.name],
    ['state', (t) => pill(t.state)],
    ['objective', (t) => t.objective],
    ['profiles', (t) => t.profiles.join(', ')],
    ['evaluations', (t) => `${t.evaluations.done} done, ${t.evaluations.failed} failed, ${t.evaluations.missing} missing, ${t.evaluations.sent + t.evaluations.pending} open`],
    ['rollout', (t) => (t.rolloutId ? html`<a href="#/rollouts/${encodeURIComponent(t.rolloutId)}">${t.rolloutId}</a>` : '–')],
    ['created', (t) => when(t.createdAt)],
  ], { id: 'tunings', row: (t) => ({ tuning: t.id }) })}</div>`;
}
