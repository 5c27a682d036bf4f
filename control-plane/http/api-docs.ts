import type { RouteTable } from './route-table.ts';

/**
 * An interactive page for the API, rendered in the browser from /openapi.json: operations by tag, their parameters,
 * body and response schemas, and a "try it" form that sends requests with the operator token. Self-contained (no
 * CDN) and without inline script or style, so the strict CSP holds here too: /ui/docs.js renders it with lit-html.
 */
export function apiDocsHtml(specUrl = '/openapi.json'): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>EdgeFleet API</title>
<link rel="stylesheet" href="/ui/docs.css">
<link rel="icon" href="data:,">
</head>
<body data-spec="${specUrl.replace(/[^A-Za-z0-9/._-]/g, '')}">
<header><h1>EdgeFleet API</h1><span id="version"></span><a href="${specUrl.replace(/[^A-Za-z0-9/._-]/g, '')}">openapi.json</a><a href="/ui/">dashboard</a>
<label>operator token <input id="token" type="password" placeholder="Bearer token for try-it requests" autocomplete="off"></label></header>
<main id="ops">loading the API description…</main>
<script type="module" src="/ui/docs.js"></script>
</body></html>`;
}

/** Serve the docs page at the given paths (public: it holds no data; try-it requests carry the token). */
export function registerApiDocs(table: RouteTable, paths: readonly string[] = ['/docs']): void {
  for (const path of paths) {
    table.add({ method: 'get', path, tag: 'system', summary: 'Interactive API reference rendered from /openapi.json', public: true, produces: ['text/html'], handler: (c) => c.html(apiDocsHtml()) });
  }
}
