import { api } from '../api.js';
import { COLORS, STATUS_COLORS, barChart, stackedBars } from '../charts.js';
import { ago, esc, labels, pill, table } from '../dom.js';

// filters survive the polling re-render
const filter = { status: '', profile: '', q: '' };

export async function fleetPage({ refresh }) {
  const [report, list] = await Promise.all([api('/reports/fleet'), api('/devices?limit=1000')]);
  const statuses = ['online', 'offline', 'unknown', 'revoked'];
  const stat = (k, v, label = k) => `<div class="stat" data-stat="${esc(k)}"><div class="v">${esc(v)}</div><div class="k">${esc(label)}</div></div>`;

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

  const devices = list.items.filter(
    (d) => (!filter.status || d.status === filter.status) && (!filter.profile || d.profileId === filter.profile) && (!filter.q || `${d.id} ${JSON.stringify(d.labels)}`.toLowerCase().includes(filter.q.toLowerCase())),
  );
  const opt = (v, cur, text = v) => `<option value="${esc(v)}"${v === cur ? ' selected' : ''}>${esc(text)}</option>`;

  const html = `
    <h1>Fleet</h1>
    <div class="stats">
      ${stat('devices', report.devices, 'devices')}
      ${statuses.map((s) => stat(s, report.byStatus[s] ?? 0)).join('')}
      ${stat('unassigned', report.unassigned, 'no profile')}
    </div>
    <div class="grid two">
      <div class="card"><h2>Devices by profile and status</h2>${stackedBars(groups, { name: 'devices-by-profile', legend: [{ key: 'online', color: STATUS_COLORS.online }, { key: 'offline', color: STATUS_COLORS.offline }, { key: 'other', color: STATUS_COLORS.unknown }] })}</div>
      <div class="card"><h2>Agent versions</h2>
        ${versions.length ? barChart(versions.map(([v, n], i) => ({ label: v, value: n, color: COLORS[i % COLORS.length] })), { name: 'agent-versions', yLabel: 'devices', rotate: false, height: 200 }) : '<p class="muted">no devices yet</p>'}
        ${table(versions, [['version', ([v]) => esc(v)], ['devices', ([, n]) => esc(n)]])}
      </div>
    </div>
    <div class="card">
      <h2>Devices <span class="muted" data-count>${devices.length} of ${list.total}</span></h2>
      <div class="filters">
        <select id="f-status"><option value="">any status</option>${statuses.map((s) => opt(s, filter.status)).join('')}</select>
        <select id="f-profile"><option value="">any profile</option>${report.byProfile.map((p) => opt(p.profileId, filter.profile)).join('')}</select>
        <input id="f-q" placeholder="search id or label" value="${esc(filter.q)}">
      </div>
      ${table(
        devices.map((d) => ({ ...d, __attrs: `data-device="${esc(d.id)}"` })),
        [
          ['device', (d) => `<a href="#/devices/${encodeURIComponent(d.id)}">${esc(d.id)}</a>`],
          ['status', (d) => pill(d.status)],
          ['profile', (d) => `${esc(d.profileId ?? '–')} <span class="muted">${esc(d.profileReason ?? '')}</span>`],
          ['agent', (d) => esc(d.agentVersion ?? '–')],
          ['last seen', (d) => `<span title="${esc(d.lastSeen ? new Date(d.lastSeen).toISOString() : '')}">${ago(d.lastSeen)}</span>`],
          ['labels', (d) => labels(d.labels)],
        ],
        'id="devices"',
      )}
    </div>`;
  return {
    html,
    after: (el) => {
      el.querySelector('#f-status').addEventListener('change', (e) => { filter.status = e.target.value; e.target.blur(); refresh(); });
      el.querySelector('#f-profile').addEventListener('change', (e) => { filter.profile = e.target.value; e.target.blur(); refresh(); });
      el.querySelector('#f-q').addEventListener('input', (e) => { filter.q = e.target.value; });
      el.querySelector('#f-q').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.target.blur(); refresh(); } });
    },
  };
}
