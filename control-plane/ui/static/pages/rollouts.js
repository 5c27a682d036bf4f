import { api, itemsOf, optional } from '../api.js';
import { esc, kv, notAvailable, num, pct, pill, progressBar, table, when } from '../dom.js';

// GET /rollouts -> {items: [summary]}; GET /rollouts/:id -> {summary, waves, devices, events}
const STATE_COLORS = {
  active: '#16a34a', succeeded: '#16a34a', failed: '#dc2626', 'timed-out': '#b91c1c', 'rolled-back': '#7f1d1d', pending: '#cbd5e1',
  sent: '#93c5fd', downloading: '#60a5fa', verifying: '#3b82f6', benchmarking: '#8b5cf6',
};
const IN_FLIGHT = ['sent', 'downloading', 'verifying', 'benchmarking'];
const modelsOf = (s) => (s.models ?? []).map((m) => `<a href="#/models/${encodeURIComponent(m.modelId)}">${esc(m.modelId)}</a> v${esc(m.version)} <span class="muted">(${esc(m.profileId)})</span>`).join('<br>') || '–';

export async function rolloutsPage() {
  const body = await optional('/rollouts');
  if (body === null) return `<h1>Rollouts</h1>${notAvailable('Rollouts (/rollouts)')}`;
  return `<h1>Rollouts</h1><div class="card">${table(itemsOf(body).map((s) => ({ ...s, __attrs: `data-rollout="${esc(s.id)}"` })), [
    ['rollout', (s) => `<a href="#/rollouts/${encodeURIComponent(s.id)}">${esc(s.id)}</a>`],
    ['name', (s) => esc(s.name ?? '')],
    ['state', (s) => pill(s.state)],
    ['models', modelsOf],
    ['wave', (s) => esc(s.currentWave)],
    ['devices', (s) => `<span data-k="devices">${esc(s.devices)}</span>`],
    ['created', (s) => esc(when(s.createdAt))],
    ['finished', (s) => esc(when(s.finishedAt))],
    ['abort reason', (s) => `<span class="error">${esc(s.abortReason ?? '')}</span>`],
  ], 'id="rollouts"')}</div>`;
}

export async function rolloutPage({ args: [id], refresh }) {
  const r = await optional(`/rollouts/${encodeURIComponent(id)}`);
  if (r === null) return `<p><a href="#/rollouts">← Rollouts</a></p>${notAvailable('Rollouts (/rollouts/:id)')}`;
  const s = r.summary ?? {};
  const waves = r.waves ?? [];
  const devices = r.devices ?? [];
  const events = r.events ?? [];
  const counts = {};
  for (const d of devices) counts[d.state] = (counts[d.state] ?? 0) + 1;
  const g = s.gates ?? {};
  const html = `<p><a href="#/rollouts">← Rollouts</a></p>
    <h1 id="rollout" data-rollout="${esc(s.id)}">Rollout ${esc(s.name ?? id)} <span class="muted">${esc(s.id)}</span> <span id="rollout-state">${pill(s.state)}</span></h1>
    <div class="row" style="margin-bottom:12px">${['pause', 'resume', 'abort', 'rollback'].map((a) => `<button data-action="${a}" class="${a === 'abort' || a === 'rollback' ? 'danger' : ''}">${a}</button>`).join('')}<span id="action-msg" class="muted"></span></div>
    ${s.abortReason ? `<div class="card error" id="abort-reason">aborted: ${esc(s.abortReason)}</div>` : ''}
      <div class="card"><h2>Rollout</h2>${kv([
        ['models', `<span>${modelsOf(s)}</span>`],
        ['devices', s.devices],
        ['current wave', `${s.currentWave} (waves 0–${Math.max(0, waves.length - 1)})`],
        ['created', when(s.createdAt)],
        ['finished', when(s.finishedAt) || '–'],
        ['gates', Object.entries(g).map(([k, v]) => `${k}=${v ?? '–'}`).join(', ') || '–'],
      ])}</div>
      <div class="card"><h2>Waves</h2>${table(waves.map((w) => ({ ...w, __attrs: `data-wave="${esc(w.wave)}"` })), [
        ['wave', (w) => esc(w.wave)],
        ['state', (w) => pill(w.state)],
        ['planned', (w) => esc(w.planned)],
        ['progress', (w) => { const total = w.devices || w.planned || 0; return `${progressBar(total ? w.active / total : 0)}<span class="muted">${esc(w.active)}/${esc(total)} active</span>`; }],
        ['in flight', (w) => esc(w.inFlight)],
        ['failed', (w) => esc(w.failed)],
        ['pending', (w) => esc(w.pending)],
        ['rolled back', (w) => esc(w.rolledBack)],
        ['median p50', (w) => (w.medianP50Ms == null ? '–' : `${num(w.medianP50Ms, 2)} ms`)],
      ], 'id="waves"')}</div>
    <div class="card"><h2>Devices <span class="muted" id="device-counts">${Object.entries(counts).map(([k, v]) => `${esc(k)} ${v}`).join(' · ')}</span></h2>
      <div class="cells">${devices.map((d) => `<a class="cell" href="#/devices/${encodeURIComponent(d.deviceId)}" title="${esc(`${d.deviceId}: ${d.state}`)}" style="background:${STATE_COLORS[d.state] ?? '#94a3b8'}"></a>`).join('')}</div>
      ${table(devices.map((d) => ({ ...d, __attrs: `data-device="${esc(d.deviceId)}"` })), [
        ['device', (d) => `<a href="#/devices/${encodeURIComponent(d.deviceId)}">${esc(d.deviceId)}</a>`],
        ['profile', (d) => esc(d.profileId ?? '–')],
        ['wave', (d) => esc(d.wave)],
        ['state', (d) => pill(d.state)],
        ['model', (d) => esc(d.model ?? '–')],
        ['previous', (d) => esc(d.previousModel ?? '–')],
        ['p50', (d) => (d.p50Ms == null ? '–' : `${num(d.p50Ms, 2)} ms`)],
        ['accuracy', (d) => pct(d.accuracy)],
        ['vs fp32', (d) => (d.speedupVsFp32 == null ? '–' : `${num(d.speedupVsFp32, 2)}x`)],
        ['detail', (d) => esc(d.reason ?? (IN_FLIGHT.includes(d.state) ? 'in flight' : ''))],
      ], 'id="rollout-devices"')}</div>
    <div class="card"><h2>Events</h2>${table(events.slice(0, 50), [['at', (e) => esc(when(e.at))], ['event', (e) => esc(e.kind)], ['device', (e) => esc(e.deviceId ?? '')], ['detail', (e) => esc(e.detail ?? '')]], 'id="events"')}</div>`;
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
