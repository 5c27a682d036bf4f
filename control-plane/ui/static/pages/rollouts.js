import { api, itemsOf, optional, pick } from '../api.js';
import { esc, kv, notAvailable, pill, progressBar, table, when } from '../dom.js';

const rid = (r) => pick(r, 'id', 'rolloutId');
const state = (r) => pick(r, 'state', 'status');
const STATE_COLORS = { installed: '#16a34a', passed: '#16a34a', succeeded: '#16a34a', benchmarked: '#16a34a', failed: '#dc2626', 'rolled-back': '#7f1d1d', pending: '#cbd5e1', transferring: '#60a5fa', installing: '#3b82f6', benchmarking: '#8b5cf6' };

export async function rolloutsPage() {
  const body = await optional('/rollouts');
  if (body === null) return `<h1>Rollouts</h1>${notAvailable('Rollouts (/rollouts)')}`;
  return `<h1>Rollouts</h1><div class="card">${table(itemsOf(body), [
    ['rollout', (r) => `<a href="#/rollouts/${encodeURIComponent(rid(r))}">${esc(rid(r))}</a>`],
    ['state', (r) => pill(state(r))],
    ['model', (r) => esc(pick(r, 'modelId', 'model') ?? '–')],
    ['profile', (r) => esc(pick(r, 'profileId', 'profile') ?? '–')],
    ['wave', (r) => esc(`${pick(r, 'currentWave', 'wave') ?? '–'}/${Array.isArray(r.waves) ? r.waves.length : '–'}`)],
    ['created', (r) => esc(when(pick(r, 'createdAt')))],
  ], 'id="rollouts"')}</div>`;
}

export async function rolloutPage({ args: [id], refresh }) {
  const r = await optional(`/rollouts/${encodeURIComponent(id)}`);
  if (r === null) return `<p><a href="#/rollouts">← Rollouts</a></p>${notAvailable('Rollouts (/rollouts/:id)')}`;
  const waves = pick(r, 'waves') ?? [];
  const devices = pick(r, 'devices', 'deviceStates') ?? [];
  const gates = pick(r, 'gates', 'gateDecisions') ?? [];
  const counts = {};
  for (const d of devices) counts[state(d)] = (counts[state(d)] ?? 0) + 1;
  const html = `<p><a href="#/rollouts">← Rollouts</a></p>
    <h1>Rollout ${esc(id)} ${pill(state(r))}</h1>
    <div class="row" style="margin-bottom:12px">${['pause', 'resume', 'abort', 'rollback'].map((a) => `<button data-action="${a}" class="${a === 'abort' || a === 'rollback' ? 'danger' : ''}">${a}</button>`).join('')}<span id="action-msg" class="muted"></span></div>
    <div class="grid two">
      <div class="card"><h2>Rollout</h2>${kv([['model', pick(r, 'modelId', 'model') ?? '–'], ['profile', pick(r, 'profileId', 'profile') ?? '–'], ['created', when(pick(r, 'createdAt'))], ['abort rules', JSON.stringify(pick(r, 'abortRules', 'rules') ?? '–')]])}</div>
      <div class="card"><h2>Waves</h2>${table(waves, [
        ['wave', (w) => esc(pick(w, 'index', 'wave', 'name') ?? '')],
        ['state', (w) => pill(state(w) ?? '–')],
        ['size', (w) => esc(pick(w, 'percent') !== undefined ? `${pick(w, 'percent')}%` : pick(w, 'size', 'devices.length') ?? '–')],
        ['progress', (w) => { const done = pick(w, 'done', 'completed', 'installed') ?? 0; const total = pick(w, 'total', 'size') ?? 0; return `${progressBar(total ? done / total : 0)}<span class="muted">${esc(done)}/${esc(total)}</span>`; }],
      ])}</div>
    </div>
    <div class="card"><h2>Devices <span class="muted">${Object.entries(counts).map(([k, v]) => `${esc(k)} ${v}`).join(' · ')}</span></h2>
      <div class="cells">${devices.map((d) => `<a class="cell" href="#/devices/${encodeURIComponent(pick(d, 'deviceId', 'id'))}" title="${esc(`${pick(d, 'deviceId', 'id')}: ${state(d)}`)}" style="background:${STATE_COLORS[state(d)] ?? '#94a3b8'}"></a>`).join('')}</div>
      ${table(devices, [['device', (d) => esc(pick(d, 'deviceId', 'id'))], ['wave', (d) => esc(pick(d, 'wave') ?? '')], ['state', (d) => pill(state(d))], ['detail', (d) => esc(pick(d, 'reason', 'error', 'detail') ?? '')]])}</div>
    <div class="card"><h2>Gates</h2>${table(gates, [['wave', (g) => esc(pick(g, 'wave') ?? '')], ['decision', (g) => pill(pick(g, 'decision', 'outcome'))], ['why', (g) => esc(pick(g, 'reason', 'why') ?? JSON.stringify(g))], ['at', (g) => esc(when(pick(g, 'at', 'decidedAt')))]])}</div>`;
  return {
    html,
    after: (el) => {
      for (const b of el.querySelectorAll('[data-action]')) {
        b.addEventListener('click', async () => {
          const a = b.dataset.action;
          if ((a === 'abort' || a === 'rollback') && !confirm(`${a} rollout ${id}?`)) return;
          try {
            await api(`/rollouts/${encodeURIComponent(id)}/${a}`, { method: 'POST', body: {} });
            el.querySelector('#action-msg').textContent = `${a} sent`;
          } catch (e) {
            el.querySelector('#action-msg').textContent = `${a}: ${e.message}`;
          }
          refresh();
        });
      }
    },
  };
}
