import type { RouteTable } from './route-table.ts';

/**
 * An interactive page for the API, rendered in the browser from /openapi.json: operations by tag, their
 * parameters and body schemas, and a "try it" form that sends requests with the operator token.
 * Self-contained (no CDN): the script below is the whole renderer.
 */
export function apiDocsHtml(specUrl = '/openapi.json'): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>EdgeFleet API</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#0f172a;background:#f8fafc}
header{background:#0f172a;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header a{color:#93c5fd}
header input{width:320px;padding:4px 6px;border-radius:4px;border:1px solid #334155}
main{max-width:1100px;margin:0 auto;padding:16px 20px}
h2{font-size:16px;margin:24px 0 8px;text-transform:capitalize;border-bottom:1px solid #cbd5e1;padding-bottom:4px}
details.op{background:#fff;border:1px solid #e2e8f0;border-radius:6px;margin:6px 0}
details.op>summary{cursor:pointer;padding:8px 10px;display:flex;gap:10px;align-items:center;list-style:none}
.m{font:600 12px ui-monospace,monospace;text-transform:uppercase;padding:2px 8px;border-radius:4px;color:#fff;min-width:52px;text-align:center}
.get{background:#2563eb}.post{background:#16a34a}.patch{background:#d97706}.delete{background:#dc2626}.put{background:#7c3aed}
.path{font-family:ui-monospace,monospace}.sum{color:#475569}.lock{color:#94a3b8;margin-left:auto;font-size:12px}
.body{padding:8px 14px 14px;border-top:1px solid #e2e8f0}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;font-size:13px}
pre{background:#0f172a;color:#e2e8f0;padding:8px;border-radius:4px;overflow:auto;max-height:360px;font-size:12px}
textarea{width:100%;min-height:90px;font:12px ui-monospace,monospace}
.try input{width:220px}.status{font-weight:600}
</style></head>
<body>
<header><h1>EdgeFleet API</h1><span id="version"></span><a href="${specUrl}">openapi.json</a><a href="/ui/">dashboard</a>
<label>operator token <input id="token" type="password" placeholder="Bearer token for try-it requests" autocomplete="off"></label></header>
<main id="ops">loading ${specUrl}…</main>
<script type="module">
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
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

function render(spec) {
  document.getElementById('version').textContent = spec.info.title + ' ' + spec.info.version + ' · OpenAPI ' + spec.openapi;
  const byTag = new Map();
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const tag = op.tags?.[0] ?? 'other';
    if (!byTag.has(tag)) byTag.set(tag, []);
    byTag.get(tag).push({ path, method, op });
  }
  const root = document.getElementById('ops');
  root.innerHTML = '';
  for (const [tag, ops] of byTag) {
    const h = document.createElement('h2'); h.textContent = tag; root.append(h);
    for (const { path, method, op } of ops) {
      const d = document.createElement('details');
      d.className = 'op'; d.dataset.method = method; d.dataset.path = path;
      const params = op.parameters ?? [];
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      d.innerHTML = '<summary><span class="m ' + method + '">' + method + '</span><span class="path">' + esc(path) + '</span><span class="sum">' + esc(op.summary) + '</span><span class="lock">' + (op.security ? 'token required' : 'public') + '</span></summary>' +
        '<div class="body">' +
        (params.length ? '<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>' + params.map((p) => '<tr><td>' + esc(p.name) + '</td><td>' + p.in + '</td><td>' + (p.required ? 'yes' : '') + '</td><td><code>' + esc(JSON.stringify(p.schema)) + '</code></td></tr>').join('') + '</table>' : '') +
        (bodySchema ? '<div>request body</div><pre>' + esc(JSON.stringify(bodySchema, null, 2)) + '</pre>' : '') +
        '<div>responses: ' + Object.entries(op.responses ?? {}).map(([c, r]) => '<b>' + c + '</b> ' + esc(r.description)).join(' · ') + '</div>' +
        '<form class="try"><h4>Try it</h4>' +
        params.map((p) => '<label>' + esc(p.name) + ' <input name="' + p.in + ':' + esc(p.name) + '" placeholder="' + p.in + '"></label> ').join('') +
        (bodySchema ? '<textarea name="body">' + esc(JSON.stringify(example(bodySchema), null, 2)) + '</textarea>' : '') +
        '<div><button type="submit">Send</button> <span class="status"></span></div><pre class="out" hidden></pre></form></div>';
      d.querySelector('form').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const f = ev.currentTarget;
        let url = path;
        const q = new URLSearchParams();
        for (const p of params) {
          const v = f.elements[p.in + ':' + p.name].value;
          if (p.in === 'path') url = url.replace('{' + p.name + '}', encodeURIComponent(v));
          else if (v !== '') q.set(p.name, v);
        }
        if ([...q].length) url += '?' + q;
        const headers = {};
        const token = tokenInput.value.trim();
        if (token) headers.authorization = 'Bearer ' + token;
        const init = { method: method.toUpperCase(), headers };
        if (bodySchema) { headers['content-type'] = 'application/json'; init.body = f.elements.body.value; }
        const out = f.querySelector('.out'), st = f.querySelector('.status');
        try {
          const res = await fetch(url, init);
          const text = await res.text();
          st.textContent = res.status + ' ' + res.statusText;
          try { out.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { out.textContent = text; }
        } catch (e) { st.textContent = 'request failed: ' + e.message; out.textContent = ''; }
        out.hidden = false;
      });
      root.append(d);
    }
  }
  document.body.dataset.ready = 'true';
}

fetch(${JSON.stringify(specUrl)}).then((r) => r.json()).then(render, (e) => { document.getElementById('ops').textContent = 'could not load the API description: ' + e.message; });
</script></body></html>`;
}

/** Serve the docs page at the given paths (public: it holds no data; try-it requests carry the token). */
export function registerApiDocs(table: RouteTable, paths: readonly string[] = ['/docs']): void {
  for (const path of paths) {
    table.add({ method: 'get', path, tag: 'system', summary: 'Interactive API reference rendered from /openapi.json', public: true, produces: ['text/html'], handler: (c) => c.html(apiDocsHtml()) });
  }
}
