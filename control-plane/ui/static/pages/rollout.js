// One rollout (GET /rollouts/:id): waves, devices (a page at a time, by state), events, and the actions that still
// apply to its state.
import { api, optional } from '../api.js';
import { html, nothing, styleMap } from '../lit.js';
import { kv, notAvailable, num, pct, pill, progressBar, table, when } from '../dom.js';
import { rolloutModels } from './rollouts.js';

const STATE_COLORS = {
  active: '#16a34a', succeeded: '#16a34a', failed: '#dc2626', 'timed-out': '#b91c1c', 'rolled-back': '#7f1d1d', pending: '#cbd5e1',
  sent: '#93c5fd', downloading: '#60a5fa', verifying: '#3b82f6', benchmarking: '#8b5cf6',
};
const IN_FLIGHT = ['sent', 'downloading', 'verifying', 'benchmarking'];
/** Which actions the rollout's state allows; a finished rollout offers none. */
export const ACTIONS = { running: ['pause', 'abort', 'rollback'], paused: ['resume', 'abort', 'rollback'], succeeded: [], aborted: [], 'rolled-back': [] };
const message = { text: '', rollout: '' };
/** Devices per page: the grid and the table show one page; the waves and counts above are always the whole rollout. */
export const DEVICE_PAGE = Number(new URLSearchParams(location.search).get('devicePage')) || 200;
/** Which page of which rollout's devices is shown: `after` of each page opened so far (the last is this one's). */
const paging = { rollout: '', state: '', afters: [] };

export async function rolloutPage({ args: [id], refresh }) {
  if (paging.rollout !== id) Object.assign(paging, { rollout: id, state: '', afters: [] });
  const q = new URLSearchParams({ limit: String(DEVICE_PAGE), events: '50' });
  if (paging.afters.length) q.set('after', paging.afters[paging.afters.length - 1]);
  if (paging.state) q.set('state', paging.state);
  const r = await optional(`/rollouts/${encodeURIComponent(id)}?${q}`);
  if (r === null) return html`<p><a href="#/rollouts">← Rollouts</a></p>${notAvailable('Rollouts (/rollouts/:id)')}`;
  // the devices past the page shown left it (their state changed under a state filter): back to the first page
  if (r.devices.length === 0 && paging.afters.length) {
    paging.afters = [];
    return rolloutPage({ args: [id], refresh });
  }
  const { summary: s, waves, devices, events, deviceStates: counts, page } = r;
  const first = paging.afters.length * DEVICE_PAGE;
  const go = (change) => { change(); refresh(); };
  const filter = (state) => go(() => Object.assign(paging, { state, afters: [] }));
  const act = async (a) => {
    if ((a === 'abort' || a === 'rollback') && !confirm(`${a} rollout ${id}?`)) return;
    try {
      await api(`/rollouts/${encodeURIComponent(id)}/${a}`, { method: 'POST', body: {} });
      Object.assign(message, { text: `${a} sent`, rollout: id });
    } catch (e) {
      Object.assign(message, { text: `${a}: ${e.message}`, rollout: id });
    }
    refresh();
  };
  const actions = ACTIONS[s.state] ?? [];
  return html`<p><a href="#/rollouts">← Rollouts</a></p>
    <h1 id="rollout" data-rollout=${s.id}>Rollout ${s.name || id} <span class="muted">${s.id}</span> <span id="rollout-state">${pill(s.state)}</span></h1>
    <div class="row spaced" id="actions">${actions.length
      ? actions.map((a) => html`<button data-action=${a} class=${a === 'abort' || a === 'rollback' ? 'danger' : ''} @click=${() => act(a)}>${a}</button>`)
      : html`<span class="muted" id="finished-note">finished (${s.state}): nothing left to pause, resume or abort</span>`}
      <span id="action-msg" class="muted">${message.rollout === id ? message.text : ''}</span></div>
    ${s.abortReason ? html`<div class="card error" id="abort-reason">aborted: ${s.abortReason}</div>` : nothing}
    <div class="card"><h2>Rollout</h2>${kv([
      ['models', rolloutModels(s)],
      ['devices', s.devices],
      ['current wave', `${s.currentWave} (waves 0–${Math.max(0, waves.length - 1)})`],
      ['created', when(s.createdAt)],
      ['finished', when(s.finishedAt) || '–'],
      ['gates', Object.entries(s.gates).map(([k, v]) => `${k}=${v ?? '–'}`).join(', ') || '–'],
    ])}</div>
    <div class="card"><h2>Waves</h2>${table(waves, [
      ['wave', (w) => w.wave],
      ['state', (w) => pill(w.state)],
      ['planned', (w) => w.planned],
      ['progress', (w) => { const total = w.devices || w.planned || 0; return html`${progressBar(total ? w.active / total : 0)}<span class="muted">${w.active}/${total} active</span>`; }],
      ['in flight', (w) => w.inFlight],
      ['failed', (w) => w.failed],
      ['pending', (w) => w.pending],
      ['rolled back', (w) => w.rolledBack],
      ['median p50', (w) => (w.medianP50Ms === null ? '–' : `${num(w.medianP50Ms, 2)} ms`)],
    ], { id: 'waves', row: (w) => ({ wave: w.wave }) })}</div>
    <div class="card"><h2>Devices <span class="muted" id="device-counts">${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(' · ')}</span></h2>
      <div class="row spaced" id="device-filter">show: <button data-state="" class=${paging.state ? '' : 'active'} @click=${() => filter('')}>all ${s.devices}</button>
        ${Object.entries(counts).map(([k, v]) => html`<button data-state=${k} class=${paging.state === k ? 'active' : ''} @click=${() => filter(k)}>${k} ${v}</button>`)}</div>
      <div class="row spaced" id="device-pager"><span class="muted" id="device-range">${page.matching ? `${first + 1}–${first + devices.length} of ${page.matching}` : 'none'}${paging.state ? ` ${paging.state}` : ''}</span>
        ${paging.afters.length ? html`<button id="devices-prev" @click=${() => go(() => paging.afters.pop())}>← previous</button>` : nothing}
        ${page.next ? html`<button id="devices-next" @click=${() => go(() => paging.afters.push(page.next))}>next →</button>` : nothing}</div>
      <div class="cells">${devices.map((d) => html`<a class="cell" href="#/devices/${encodeURIComponent(d.deviceId)}" title=${`${d.deviceId}: ${d.state}`} style=${styleMap({ background: STATE_COLORS[d.state] ?? '#94a3b8' })}></a>`)}</div>
      ${table(devices, [
        ['device', (d) => html`<a href="#/devices/${encodeURIComponent(d.deviceId)}">${d.deviceId}</a>`],
        ['profile', (d) => d.profileId ?? '–'],
        ['wave', (d) => d.wave],
        ['state', (d) => pill(d.state)],
        ['model', (d) => d.model],
        ['previous', (d) => d.previousModel ?? '–'],
        ['p50', (d) => (d.p50Ms === null ? '–' : `${num(d.p50Ms, 2)} ms`)],
        ['accuracy', (d) => pct(d.accuracy)],
        ['vs fp32', (d) => (d.speedupVsFp32 === null ? '–' : `${num(d.speedupVsFp32, 2)}x`)],
        ['detail', (d) => d.reason ?? (IN_FLIGHT.includes(d.state) ? 'in flight' : '')],
      ], { id: 'rollout-devices', row: (d) => ({ device: d.deviceId }) })}</div>
    <div class="card"><h2>Events</h2>${table(events.slice(0, 50), [['at', (e) => when(e.at)], ['event', (e) => e.kind], ['device', (e) => e.deviceId ?? ''], ['detail', (e) => e.detail ?? '']], { id: 'events' })}</div>`;
}
