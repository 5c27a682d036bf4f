// New rollout: one model version per profile, target labels, waves (canary, then percentages or a growth factor)
// and gates; POST /rollouts. The API's validation messages appear next to their fields.
import { api } from '../api.js';
import { errorFor, formMessage, formState, numberField, submit } from '../forms.js';
import { html } from '../lit.js';

const state = formState();
const FIELDS = ['name', 'models', 'labels', 'waves.canary', 'waves.then', 'waves', 'gates.maxFailurePercent', 'gates.minFinished', 'gates.maxLatencyRegressionPercent', 'gates.maxAccuracyDrop', 'gates.deviceTimeoutSeconds', 'gates', 'rollbackOnAbort'];

function fieldError(field, message) {
  return Object.assign(new Error(message), { field });
}

/** The form's fields as a POST /rollouts body; only what the operator filled in (the API has the defaults). */
function buildBody(form, profiles) {
  const models = [];
  for (const p of profiles) {
    const v = form.elements[`model:${p.id}`].value;
    if (!v) continue;
    const at = v.lastIndexOf('@');
    models.push({ modelId: v.slice(0, at), version: Number(v.slice(at + 1)), profileId: p.id });
  }
  const labels = {};
  for (const part of form.elements.labels.value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw fieldError('labels', `"${part}" is not key=value`);
    labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const canaryN = numberField(form, 'waves.canary');
  const canary = canaryN === undefined ? undefined : form.elements.canaryUnit.value === 'percent' ? { percent: canaryN } : { count: canaryN };
  const thenRaw = form.elements['waves.then'].value.trim();
  let then;
  if (thenRaw) {
    if (form.elements.thenUnit.value === 'factor') then = { factor: numberField(form, 'waves.then') };
    else {
      const percents = thenRaw.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      if (percents.some((p) => !Number.isFinite(p))) throw fieldError('waves.then', `"${thenRaw}" is not a comma list of numbers`);
      then = { percents };
    }
  }
  const gates = {};
  for (const g of ['maxFailurePercent', 'minFinished', 'maxLatencyRegressionPercent', 'maxAccuracyDrop', 'deviceTimeoutSeconds']) {
    const v = numberField(form, `gates.${g}`);
    if (v !== undefined) gates[g] = v;
  }
  return {
    name: form.elements.name.value,
    models,
    labels,
    waves: { ...(canary ? { canary } : {}), ...(then ? { then } : {}) },
    gates,
    rollbackOnAbort: form.elements.rollbackOnAbort.checked,
  };
}

export async function rolloutNewPage({ refresh }) {
  const [profiles, models] = await Promise.all([api('/profiles'), api('/models?limit=1000')]);
  if (state.created) {
    const id = state.created.summary.id;
    state.created = null;
    location.hash = `#/rollouts/${encodeURIComponent(id)}`;
    return html`<p class="muted">created ${id}</p>`;
  }
  const forProfile = (pid) => {
    const own = models.items.filter((m) => m.profileId === pid);
    return own.length ? own : models.items.filter((m) => m.profileId === null);
  };
  const send = (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    return submit(state, { path: '/rollouts', fields: FIELDS, rerender: refresh, build: () => buildBody(form, profiles.items) });
  };
  const num = (name, label, placeholder) => html`<label>${label} <input name=${name} inputmode="decimal" placeholder=${placeholder}></label>${errorFor(state, name)}`;
  return html`<p><a href="#/rollouts">← Rollouts</a></p><h1>New rollout</h1>
    <form id="rollout-form" class="form card" novalidate @submit=${send}>
      <label>name <input name="name" placeholder="e.g. cnn v2 to the fleet"></label>${errorFor(state, 'name')}
      <fieldset><legend>Model version per profile (leave a profile out with "none")</legend>
        ${profiles.items.map((p) => html`<label>${p.id} <select name=${`model:${p.id}`}><option value="">none</option>${forProfile(p.id).map((m) => html`<option value=${`${m.id}@${m.version}`}>${m.id} v${m.version} (${m.kind})</option>`)}</select></label>`)}
        ${errorFor(state, 'models')}
      </fieldset>
      <label>only devices labelled <input name="labels" placeholder="site=berlin,tier=canary"></label>${errorFor(state, 'labels')}
      <fieldset><legend>Waves</legend>
        <label>canary <input name="waves.canary" inputmode="decimal" placeholder="1">
          <select name="canaryUnit"><option value="count">devices</option><option value="percent">percent</option></select></label>${errorFor(state, 'waves.canary')}
        <label>then <input name="waves.then" placeholder="25,50,100">
          <select name="thenUnit"><option value="percents">cumulative percents</option><option value="factor">growth factor</option></select></label>${errorFor(state, 'waves.then')}${errorFor(state, 'waves')}
      </fieldset>
      <fieldset><legend>Gates</legend>
        ${num('gates.maxFailurePercent', 'max failed (%)', '20')}
        ${num('gates.minFinished', 'judge after finished devices', '1')}
        ${num('gates.maxLatencyRegressionPercent', 'max p50 regression (%)', 'off')}
        ${num('gates.maxAccuracyDrop', 'max accuracy drop vs central (0..1)', 'off')}
        ${num('gates.deviceTimeoutSeconds', 'device timeout (s)', '1800')}
        ${errorFor(state, 'gates')}
      </fieldset>
      <label><input type="checkbox" name="rollbackOnAbort" checked> roll back the devices when a gate trips</label>${errorFor(state, 'rollbackOnAbort')}
      <div><button class="primary" type="submit" ?disabled=${state.busy}>Start rollout</button></div>
      ${formMessage(state)}
    </form>`;
}
