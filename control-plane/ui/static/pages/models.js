// The registry: every model version (GET /models).
import { optional } from '../api.js';
import { html } from '../lit.js';
import { bytes, notAvailable, pct, table, when } from '../dom.js';

export async function modelsPage() {
  const body = await optional('/models?limit=1000');
  if (body === null) return html`<h1>Models</h1>${notAvailable('The model registry (/models)')}`;
  return html`<h1>Models</h1><div class="card">${table(body.items, [
    ['model', (m) => html`<a href="#/models/${encodeURIComponent(m.id)}">${m.id}</a>`],
    ['name', (m) => m.name],
    ['version', (m) => m.version],
    ['profile', (m) => m.profileId ?? '–'],
    ['recipe', (m) => m.recipeId ?? '–'],
    ['kind', (m) => m.kind],
    ['role', (m) => m.role],
    ['size', (m) => bytes(m.size)],
    ['accuracy', (m) => pct(m.metrics.accuracy)],
    ['companions', (m) => m.companions.map((c) => c.role).join(', ') || '–'],
    ['training job', (m) => (m.lineage.jobId ? html`<a href="#/training/${encodeURIComponent(m.lineage.jobId)}">${m.lineage.jobId}</a>` : '–')],
    ['created', (m) => when(m.createdAt)],
    ['', (m) => html`<a href="#/models/${encodeURIComponent(m.id)}/report">report</a>`],
  ], { id: 'models', row: (m) => ({ model: m.id, version: m.version }) })}</div>`;
}
