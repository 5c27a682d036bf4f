// Dashboard shell: login with the operator token, a hash router over routes.js, live updates by polling the API.
// Pages return lit-html templates; re-rendering patches only what changed, so fields keep their focus and input.
import { ApiError, Unauthorized, api, session } from './api.js';
import { html, render } from './lit.js';
import { ROUTES } from './routes.js';

const POLL_MS = Number(new URLSearchParams(location.search).get('poll')) || 2000;

const $ = (id) => document.getElementById(id);
let generation = 0;
let timer = null;
let busy = false;

function showLogin(message) {
  clearTimeout(timer);
  $('nav').hidden = true;
  $('logout').hidden = true;
  render(html``, $('page'));
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message ?? '';
  $('live').textContent = '';
  $('token').focus();
}

function renderNav(active) {
  render(html`${ROUTES.filter((r) => r.link).map((r) => html`<a href="#/${r.nav}" data-nav=${r.nav} class=${r.nav === active ? 'active' : ''}>${r.link}</a>`)}
    <a href="/ui/docs" target="_blank" rel="noopener">API</a>`, $('nav'));
}

async function show(first) {
  if (busy) return;
  const hash = location.hash || '#/fleet';
  const route = ROUTES.find((r) => r.pattern.test(hash));
  if (!route) { location.hash = '#/fleet'; return; }
  const args = hash.match(route.pattern).slice(1).map(decodeURIComponent);
  const gen = generation;
  const el = $('page');
  busy = true;
  try {
    const view = await route.page({ args, refresh: () => schedule(0) });
    if (gen !== generation) return;
    render(view, el);
    renderNav(route.nav);
    $('live').className = 'live on';
    $('live').textContent = `live · ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e instanceof Unauthorized) { generation++; return showLogin('The operator token was not accepted; log in again.'); }
    if (gen !== generation) return;
    $('live').className = 'live err';
    $('live').textContent = `update failed: ${e.message}`;
    if (first) render(html`<div class="card error">${e instanceof ApiError && e.status === 404 ? e.message : `Could not load this page: ${e.message}`}</div>`, el);
  } finally {
    if (gen === generation) busy = false;
  }
  if (gen === generation && route.poll !== false) schedule(route.poll === 'slow' ? POLL_MS * 5 : POLL_MS);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => show(false), ms);
}

function navigate() {
  generation++;
  busy = false;
  clearTimeout(timer);
  // a fresh container per page: a page's template never patches another page's DOM
  const el = $('page');
  el.replaceChildren();
  delete el['_$litPart$'];
  render(html`<p class="muted">loading…</p>`, el);
  show(true);
}

function start() {
  if (!session.get()) return showLogin();
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  navigate();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = $('token').value.trim();
  session.set(token);
  try {
    await api('/reports/fleet');
    $('token').value = '';
    start();
  } catch (e) {
    session.clear();
    showLogin(e instanceof Unauthorized ? 'That token was not accepted.' : `Could not reach the control plane: ${e.message}`);
  }
});
$('logout').addEventListener('click', () => { session.clear(); generation++; showLogin(); });
window.addEventListener('hashchange', () => { if (session.get()) navigate(); });
start();
