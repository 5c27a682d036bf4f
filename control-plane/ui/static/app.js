// Dashboard shell: login with the operator token, a hash router, and live updates by polling the API.
import { ApiError, Unauthorized, api, session } from './api.js';
import { esc } from './dom.js';
import { devicePage } from './pages/device.js';
import { fleetPage } from './pages/fleet.js';
import { modelPage, modelReportPage, modelsPage } from './pages/models.js';
import { rolloutPage, rolloutsPage } from './pages/rollouts.js';
import { trainingPage } from './pages/training.js';

const POLL_MS = Number(new URLSearchParams(location.search).get('poll')) || 2000;

const ROUTES = [
  [/^#\/fleet$/, fleetPage, 'fleet'],
  [/^#\/devices\/([^/]+)$/, devicePage, 'fleet'],
  [/^#\/training$/, trainingPage, 'training'],
  [/^#\/models$/, modelsPage, 'models'],
  [/^#\/models\/([^/]+)\/report$/, modelReportPage, 'models'],
  [/^#\/models\/([^/]+)$/, modelPage, 'models'],
  [/^#\/rollouts$/, rolloutsPage, 'rollouts'],
  [/^#\/rollouts\/([^/]+)$/, rolloutPage, 'rollouts'],
];

const $ = (id) => document.getElementById(id);
let generation = 0;
let timer = null;
let busy = false;

function showLogin(message) {
  clearTimeout(timer);
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('page').innerHTML = '';
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message ?? '';
  $('live').textContent = '';
  $('token').focus();
}

async function render(first) {
  if (busy) return;
  const hash = location.hash || '#/fleet';
  const route = ROUTES.find(([re]) => re.test(hash));
  if (!route) { location.hash = '#/fleet'; return; }
  const [re, page, nav] = route;
  const args = hash.match(re).slice(1).map(decodeURIComponent);
  const gen = generation;
  const el = $('page');
  const active = document.activeElement;
  // a re-render would take the caret out of a field the operator is typing in; wait for the next tick
  if (!first && active && el.contains(active) && active.matches('input,select,textarea')) return schedule(POLL_MS);
  busy = true;
  try {
    const out = await page({ args, refresh: () => schedule(0) });
    if (gen !== generation) return;
    const { html, after } = typeof out === 'string' ? { html: out } : out;
    el.innerHTML = html;
    after?.(el);
    $('live').className = 'live on';
    $('live').textContent = `live · ${new Date().toLocaleTimeString()}`;
    document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === nav));
  } catch (e) {
    if (e instanceof Unauthorized) { generation++; return showLogin('The operator token was not accepted; log in again.'); }
    if (gen !== generation) return;
    $('live').className = 'live err';
    $('live').textContent = `update failed: ${e.message}`;
    if (first) el.innerHTML = `<div class="card error">${esc(e instanceof ApiError && e.status === 404 ? e.message : `Could not load this page: ${e.message}`)}</div>`;
  } finally {
    if (gen === generation) busy = false;
  }
  if (gen === generation) schedule(POLL_MS);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => render(false), ms);
}

function navigate() {
  generation++;
  busy = false;
  clearTimeout(timer);
  $('page').innerHTML = '<p class="muted">loading…</p>';
  render(true);
}

async function start() {
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
