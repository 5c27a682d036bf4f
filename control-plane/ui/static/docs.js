// The API docs page: renders /openapi.json with lit-html (escaping by default) and sends try-it requests.
import { html, nothing, render } from './lit.js';

const specUrl = document.body.dataset.spec || '/openapi.json';
const tokenInput = document.getElementById('token');
tokenInput.value = sessionStorage.getItem('edgefleet.token') ?? '';
tokenInput.addEventListener('change', () => sessionStorage.setItem('edgefleet.token', tokenInput.value.trim()));

function example(schema) {
  if (!schema || typeof schema !== 'object') return null;
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf || schema.oneOf) return example((schema.anyOf ?? schema.oneOf).find((s) => s.type !== 'null') ?? {});
  switch (schema.type) {
    case 'object': { const o = {}; for (const [k, v] of Object.entries(schema.properties ?? {})) if ((schema.required ?? []).includes(k)) o[k] = example(v); return o; }
    case 'array': return [];
    case 'string': return '';
    case 'number': case 'integer': return schema.minimum ?? 0;
    case 'boolean': return false;
    default: return null;
  }
}

async function send(ev, { path, method, params, bodySchema }) {
  ev.preventDefault();
  const f = ev.currentTarget;
  let url = path;
  const q = new URLSearchParams();
  for (const p of params) {
    const v = f.elements[`${p.in}:${p.name}`].value;
    if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(v));
    else if (v !== '') q.set(p.name, v);
  }
  if ([...q].length) url += `?${q}`;
  const headers = {};
  const token = tokenInput.value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  const init = { method: method.toUpperCase(), headers };
  if (bodySchema) { headers['content-type'] = 'application/json'; init.body = f.elements.body.value; }
  const out = f.querySelector('.out'), st = f.querySelector('.status');
  try {
    const res = await fetch(url, init);
    const text = await res.text();
    st.textContent = `${res.status} ${res.statusText}`;
    try { out.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { out.textContent = text; }
  } catch (e) { st.textContent = `request failed: ${e.message}`; out.textContent = ''; }
  out.hidden = false;
}

function operation({ path, method, op }) {
  const params = op.parameters ?? [];
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const responses = Object.entries(op.responses ?? {});
  return html`<details class="op" data-method=${method} data-path=${path}>
    <summary><span class="m ${method}">${method}</span><span class="path">${path}</span><span class="sum">${op.summary}</span><span class="lock">${op.security ? 'token required' : 'public'}</span></summary>
    <div class="body">
      ${params.length ? html`<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>
        ${params.map((p) => html`<tr><td>${p.name}</td><td>${p.in}</td><td>${p.required ? 'yes' : ''}</td><td><code>${JSON.stringify(p.schema)}</code></td></tr>`)}</table>` : nothing}
      ${bodySchema ? html`<div>request body</div><pre>${JSON.stringify(bodySchema, null, 2)}</pre>` : nothing}
      <div>responses: ${responses.map(([c, r], i) => html`${i ? ' · ' : ''}<b>${c}</b> ${r.description}`)}</div>
      ${responses.map(([c, r]) => (r.content?.['application/json']?.schema && !r.content['application/json'].schema.$ref
        ? html`<details class="schema" data-status=${c}><summary>${c} response schema</summary><pre>${JSON.stringify(r.content['application/json'].schema, null, 2)}</pre></details>`
        : nothing))}
      <form class="try" @submit=${(ev) => send(ev, { path, method, params, bodySchema })}><h4>Try it</h4>
        ${params.map((p) => html`<label>${p.name} <input name=${`${p.in}:${p.name}`} placeholder=${p.in}></label> `)}
        ${bodySchema ? html`<textarea name="body">${JSON.stringify(example(bodySchema), null, 2)}</textarea>` : nothing}
        <div><button type="submit">Send</button> <span class="status"></span></div><pre class="out" hidden></pre></form>
    </div></details>`;
}

function view(spec) {
  const byTag = new Map();
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const tag = op.tags?.[0] ?? 'other';
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push({ path, method, op });
  }
  return html`${[...byTag].map(([tag, ops]) => html`<h2>${tag}</h2>${ops.map(operation)}`)}`;
}

fetch(specUrl).then((r) => r.json()).then((spec) => {
  document.getElementById('version').textContent = `${spec.info.title} ${spec.info.version} · OpenAPI ${spec.openapi}`;
  const root = document.getElementById('ops');
  root.textContent = '';
  render(view(spec), root);
  document.body.dataset.ready = 'true';
}, (e) => { document.getElementById('ops').textContent = `could not load the API description: ${e.message}`; });
