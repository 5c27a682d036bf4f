// Fleet: counts by status, profile and agent version (GET /reports/fleet) and the device list (GET /devices).
import { api } from '../api.js';
import { COLORS, STATUS_COLORS, barChart, stackedBars } from '../charts.js';
import { html } from '../lit.js';
import { ago, labels, pill, table } from '../dom.js';

// filters and the page survive the polling re-render; the API filters and pages (a fleet is larger than a page)
const filter = { status: '', profile: '', q: '', page: 0 };
const STATUSES = ['online', 'offline', 'unknown', 'revoked'];
/** Devices per page of the list. */
export const FLEET_PAGE = Number(new URLSearchParams(location.search).get('fleetPage')) || 100;

/** The search box: `key=value` is a label, anything else a part of the device id. */
function deviceQuery() {
  const q = new URLSearchParams({ limit: String(FLEET_PAGE), offset: String(filter.page * FLEET_PAGE) });
  if (filter.status) q.set('status', filter.status);
  if (filter.profile) q.set('profile', filter.profile);
  const text = filter.q.trim();
  if (text) q.set(/^[A-Za-z0-9][A-Za-z0-9_.\/-]*=/.test(text) ? 'label' : 'q', text);
  return q;
}

export async function fleetPage({ refresh }) {
  const [report, list] = await Promise.all([api('/reports/fleet'), api(`/devices?${deviceQuery()}`)]);
  // the list shrank under the page shown (devices revoked, a filter's matches gone): back to the first page
  if (list.items.length === 0 && filter.page > 0) {
    filter.page = 0;
    return fleetPage({ refresh });
  }
  const stat = (k, v, label = k) => html`<div class="stat" data-stat=${k}><div class="v">${v}</div><div class="k">${label}</div></div>`;
  const groups = report.byProfile.map((p) => ({
    label: p.profileId,
    parts: [
      { key: 'online', value: p.online, color: STATUS_COLORS.online },
      { key: 'offline', value: p.offline, color: STATUS_COLORS.offline },
      { key: 'other', value: p.devices - p.online - p.offline, color: STATUS_COLORS.unknown },
    ],
  }));
  if (report.unassigned) groups.push({ label: '(no profile)', parts: [{ key: 'other', value: report.unassigned, color: STATUS_COLORS.unknown }] });
  const versions = Object.entries(report.byAgentVersion).sort((a, b) => b[1] - a[1]);
  const devices = list.items;
  const first = list.offset + 1;
  const last = list.offset + devices.length;
  const opt = (v, cur, text = v) => html`<option value=${v} ?selected=${v === cur}>${text}</option>`;
  const set = (k) => (e) => { filter[k] = e.target.value; filter.page = 0; e.target.blur(); refresh(); };
  const turn = (by) => { filter.page = Math.max(0, filter.page + by); refresh(); };
  return html`
    <h1>Fleet</h1>
    <div class="stats">
      ${stat('devices', report.devices, 'devices')}
      ${STATUSES.map((s) => stat(s, report.byStatus[s] ?? 0))}
      ${stat('unassigned', report.unassigned, 'no profile')}
    </div>
    <div class="grid two">
      <div class="card"><h2>Devices by profile and status</h2>${stackedBars(groups, { name: 'devices-by-profile', legend: [{ key: 'online', color: STATUS_COLORS.online }, { key: 'offline', color: STATUS_COLORS.offline }, { key: 'other', color: STATUS_COLORS.unknown }] })}</div>
      <div class="card"><h2>Agent versions</h2>
        ${versions.length ? barChart(versions.map(([v, n], i) => ({ label: v, value: n, color: COLORS[i % COLORS.length] })), { name: 'agent-versions', yLabel: 'devices', rotate: false, integer: true, height: 160 }) : html`<p class="muted">no devices yet</p>`}
        ${table(versions, [['version', ([v]) => v], ['devices', ([, n]) => n]])}
      </div>
    </div>
    <div class="card">
      <h2>Devices <span class="muted" data-count>${devices.length ? `${first}–${last} of ${list.total}` : `none of ${report.devices}`}</span></h2>
      <div class="filters">
        <select id="f-status" @change=${set('status')}><option value="">any status</option>${STATUSES.map((s) => opt(s, filter.status))}</select>
        <select id="f-profile" @change=${set('profile')}><option value="">any profile</option>${report.byProfile.map((p) => opt(p.profileId, filter.profile))}</select>
        <input id="f-q" placeholder="part of an id, or label=value" .value=${filter.q} @input=${(e) => { filter.q = e.target.value; }} @keydown=${(e) => { if (e.key === 'Enter') { filter.page = 0; e.target.blur(); refresh(); } }}>
        ${filter.page > 0 ? html`<button id="fleet-prev" @click=${() => turn(-1)}>← previous</button>` : ''}
        ${last < list.total ? html`<button id="fleet-next" @click=${() => turn(1)}>next →</button>` : ''}
      </div>
      ${table(devices, [
        ['device', (d) => html`<a href="#/devices/${encodeURIComponent(d.id)}">${d.id}</a>`],
        ['status', (d) => pill(d.status)],
        ['profile', (d) => html`${d.profileId ?? '–'} <span class="muted">${d.profileReason ?? ''}</span>`],
        ['agent', (d) => d.agentVersion ?? '–'],
        ['last seen', (d) => html`<span title=${d.lastSeen ? new Date(d.lastSeen).toISOString() : ''}>${ago(d.lastSeen)}</span>`],
        ['labels', (d) => labels(d.labels)],
      ], { id: 'devices', row: (d) => ({ device: d.id }) })}
    </div>`;
}
