// Enrollment: create a fleet enrollment token (its secret is shown once, here) and list the tokens (GET/POST
// /enrollment-tokens).
import { api } from '../api.js';
import { errorFor, formMessage, formState, numberField, submit } from '../forms.js';
import { html, nothing } from '../lit.js';
import { pill, table, when } from '../dom.js';

const state = formState();
const FIELDS = ['label', 'expiresInSeconds', 'maxUses'];

export async function tokensPage({ refresh }) {
  const list = await api('/enrollment-tokens');
  const create = (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    return submit(state, {
      path: '/enrollment-tokens',
      fields: FIELDS,
      rerender: refresh,
      build: () => {
        const body = { label: form.elements.label.value };
        const hours = numberField(form, 'expiresInSeconds');
        if (hours !== undefined) body.expiresInSeconds = Math.round(hours * 3600);
        const uses = numberField(form, 'maxUses');
        if (uses !== undefined) body.maxUses = uses;
        return body;
      },
    }).then(() => { if (state.created) form.reset(); });
  };
  const created = state.created;
  return html`<h1>Enrollment</h1>
    <div class="card"><h2>New enrollment token</h2>
      <form id="token-form" class="form" novalidate @submit=${create}>
        <label>label <input name="label" placeholder="e.g. berlin-site"></label>${errorFor(state, 'label')}
        <label>expires after (hours) <input name="expiresInSeconds" inputmode="decimal" placeholder="24"></label>${errorFor(state, 'expiresInSeconds')}
        <label>max uses <input name="maxUses" inputmode="numeric" placeholder="unlimited"></label>${errorFor(state, 'maxUses')}
        <div><button class="primary" type="submit" ?disabled=${state.busy}>Create token</button></div>
        ${formMessage(state)}
      </form>
      ${created ? html`<div class="created" id="token-created" data-token-id=${created.id}>
        <p><b>Token ${created.id}</b> — copy it now: it is shown only once.</p>
        <pre class="secret" id="token-secret">${created.token}</pre>
        <p class="muted">On a device: <code>edgefleet-agent run --broker-url ${created.brokerUrl} --enrollment-token &lt;token&gt;</code></p>
        <button type="button" @click=${() => { state.created = null; refresh(); }}>I have copied it</button></div>` : nothing}
    </div>
    <div class="card"><h2>Tokens</h2>${table(list.items, [
      ['id', (t) => t.id],
      ['label', (t) => t.label],
      ['state', (t) => pill(t.usable ? 'usable' : t.state.replace(/^enrollment token /, ''))],
      ['uses', (t) => `${t.uses}${t.maxUses === null ? '' : ` of ${t.maxUses}`}`],
      ['expires', (t) => (t.expiresAt === null ? 'never' : when(t.expiresAt))],
      ['created', (t) => when(t.createdAt)],
    ], { id: 'tokens', row: (t) => ({ token: t.id }) })}</div>`;
}
