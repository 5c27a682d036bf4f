// Rollouts: the list (GET /rollouts), newest first, and the way to a new one.
import { optional } from '../api.js';
import { html } from '../lit.js';
import { modelRef, notAvailable, pill, table, when } from '../dom.js';

export const rolloutModels = (s) => (s.models.length ? s.models.map((m, i) => html`${i ? html`<br>` : ''}${modelRef(m)} <span class="muted">(${m.profileId})</span>`) : '–');

export async function rolloutsPage() {
  const body = await optional('/rollouts');
  if (body === null) return html`<h1>Rollouts</h1>${notAvailable('Rollouts (/rollouts)')}`;
  return html`<h1>Rollouts <a class="button" href="#/rollouts/new" id="new-rollout">New rollout</a></h1><div class="card">${table(body.items, [
    ['rollout', (s) => html`<a href="#/rollouts/${encodeURIComponent(s.id)}">${s.id}</a>`],
    ['name', (s) => s.name],
    ['state', (s) => pill(s.state)],
    ['models', rolloutModels],
    ['wave', (s) => s.currentWave],
    ['devices', (s) => html`<span data-k="devices">${s.devices}</span>`],
    ['created', (s) => when(s.createdAt)],
    ['finished', (s) => when(s.finishedAt)],
    ['abort reason', (s) => html`<span class="error">${s.abortReason ?? ''}</span>`],
  ], { id: 'rollouts', row: (s) => ({ rollout: s.id }) })}</div>`;
}
