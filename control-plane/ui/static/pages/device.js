import { api, optional, pick, itemsOf } from '../api.js';
import { COLORS, barChart, timeline } from '../charts.js';
import { ago, bytes, esc, flatten, kv, labels, notAvailable, num, pill, table, when } from '../dom.js';

/** Presence segments, oldest first, from the newest-first status history. */
export function presenceSegments(history, now = Date.now()) {
  const asc = [...history].sort((a, b) => a.at - b.at);
  return asc.map((h, i) => ({ from: h.at, to: i + 1 < asc.length ? asc[i + 1].at : now, status: h.status, reason: h.reason }));
}

function installsSection(installs) {
  if (installs === null) return notAvailable('Model installs and benchmark history (/devices/:id/installs)');
  const rows = itemsOf(installs);
  if (!rows.length) return '<p class="muted">no models installed yet</p>';
  const bench = rows
    .map((r) => ({ r, p50: pick(r, 'benchmark.latencyMs.p50', 'benchmark.latency.p50Ms', 'benchmark.p50Ms', 'latencyMs.p50', 'p50Ms') }))
    .filter((x) => typeof x.p50 === 'number');
  return (
    (bench.length
      ? barChart(
          bench.map(({ r, p50 }, i) => ({ label: `${pick(r, 'modelId', 'model') ?? '?'}/${pick(r, 'recipeId', 'variant', 'kind') ?? ''}`, value: p50, color: COLORS[i % COLORS.length] })),
          { name: 'install-latency', yLabel: 'p50 latency (ms)', height: 220 },
        )
      : '') +
    table(rows, [
      ['model', (r) => esc(pick(r, 'modelId', 'model.id', 'model') ?? '–')],
      ['variant', (r) => esc(pick(r, 'recipeId', 'variant', 'kind') ?? '–')],
      ['state', (r) => pill(pick(r, 'state', 'status'))],
      ['p50 ms', (r) => num(pick(r, 'benchmark.latencyMs.p50', 'benchmark.latency.p50Ms', 'benchmark.p50Ms', 'latencyMs.p50', 'p50Ms'), 2)],
      ['accuracy', (r) => num(pick(r, 'benchmark.accuracy', 'accuracy'), 4)],
      ['when', (r) => esc(when(pick(r, 'updatedAt', 'installedAt', 'at', 'createdAt')))],
    ])
  );
}

export async function devicePage({ args: [id], refresh }) {
  const [d, installs, profiles] = await Promise.all([api(`/devices/${encodeURIComponent(id)}`), optional(`/devices/${encodeURIComponent(id)}/installs`), api('/profiles')]);
  const f = d.facts ?? {};
  const facts = flatten(f).map(([k, v]) => [k, k === 'memoryBytes' ? bytes(v) : v]);
  const hb = d.heartbeat ? flatten(d.heartbeat).map(([k, v]) => [k, /Bytes$/.test(k) ? bytes(v) : typeof v === 'number' && !Number.isInteger(v) ? num(v, 2) : v]) : [];
  const html = `
    <p><a href="#/fleet">← Fleet</a></p>
    <h1>${esc(d.id)} ${pill(d.status)}</h1>
    <div class="stats">
      <div class="stat" data-stat="profile"><div class="v">${esc(d.profileId ?? '–')}</div><div class="k">profile (${esc(d.profileReason ?? 'no match')})</div></div>
      <div class="stat" data-stat="agent"><div class="v">${esc(d.agentVersion ?? '–')}</div><div class="k">agent version</div></div>
      <div class="stat" data-stat="last-seen"><div class="v">${ago(d.lastSeen)}</div><div class="k">last seen</div></div>
      <div class="stat" data-stat="births"><div class="v">${esc(d.births)}</div><div class="k">births</div></div>
    </div>
    <div class="grid two">
      <div class="card"><h2>Profile</h2>
        ${kv([['profile', d.profileId ?? 'none'], ['why', d.profileReason ?? '–'], ['operator override', d.profileOverride ?? 'none (matched)'], ['labels', labels(d.labels)], ['registered', when(d.createdAt)], ['revoked', d.revokedAt ? when(d.revokedAt) : 'no'], ['current model', d.currentModel ? JSON.stringify(d.currentModel) : 'none']])}
        ${d.revokedAt ? '' : `<div class="row" style="margin-top:10px">
          <label>pin to profile <select id="override"><option value="">(match automatically)</option>${profiles.items.map((p) => `<option value="${esc(p.id)}"${p.id === d.profileOverride ? ' selected' : ''}>${esc(p.id)}</option>`).join('')}</select></label>
          <span id="override-msg" class="muted"></span></div>`}
      </div>
      <div class="card"><h2>Facts</h2><div id="facts">${kv(facts)}</div></div>
    </div>
    <div class="grid two">
      <div class="card"><h2>Presence</h2>${timeline(presenceSegments(d.statusHistory), { name: 'presence' })}
        ${table(d.statusHistory.slice(0, 12), [['at', (h) => esc(when(h.at))], ['status', (h) => pill(h.status)], ['reason', (h) => esc(h.reason)]], 'id="presence-history"')}</div>
      <div class="card"><h2>Last heartbeat</h2>${hb.length ? kv(hb) : '<p class="muted">none yet</p>'}</div>
    </div>
    <div class="card"><h2>Models and benchmarks</h2>${installsSection(installs)}</div>`;
  return {
    html,
    after: (el) => {
      el.querySelector('#override')?.addEventListener('change', async (e) => {
        const v = e.target.value;
        e.target.blur();
        try {
          await api(`/devices/${encodeURIComponent(id)}`, { method: 'PATCH', body: { profileOverride: v || null } });
        } catch (err) {
          el.querySelector('#override-msg').textContent = err.message;
        }
        refresh();
      });
    },
  };
}
