import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { apiDocsHtml, registerApiDocs } from '../http/api-docs.ts';
import type { ControlPlaneExtension } from '../server.ts';

const STATIC_DIR = join(import.meta.dirname, 'static');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
};

/** A file under static/, or null for anything outside it or missing. */
async function staticFile(rel: string): Promise<{ body: Buffer; type: string } | null> {
  const clean = normalize(rel).replace(/^([/\\])+/, '');
  if (clean.startsWith('..') || clean.includes(`${sep}..`)) return null;
  const type = TYPES[extname(clean)];
  if (!type) return null;
  try {
    return { body: await readFile(join(STATIC_DIR, clean)), type };
  } catch {
    return null;
  }
}

/**
 * The operator dashboard: static HTML/CSS/JS under /ui/ (no build step), `/` redirecting to it, and the API
 * docs page (also at /ui/docs, since /docs needs the auth middleware to honour public routes).
 * The pages call the same HTTP API with the operator token the user logs in with.
 */
export function createUiExtension(): ControlPlaneExtension {
  return {
    routes: (table) => {
      table.add({ method: 'get', path: '/', tag: 'ui', summary: 'Redirects to the dashboard', public: true, produces: ['text/html'], handler: (c) => c.redirect('/ui/', 302) });
      table.add({ method: 'get', path: '/ui', tag: 'ui', summary: 'Redirects to the dashboard', public: true, produces: ['text/html'], handler: (c) => c.redirect('/ui/', 301) });
      table.add({
        method: 'get',
        path: '/ui/*',
        tag: 'ui',
        summary: 'The operator dashboard (static files; the pages call this API with the operator token)',
        public: true,
        produces: ['text/html', 'text/javascript', 'text/css'],
        handler: async (c) => {
          const rel = c.req.path.slice('/ui/'.length) || 'index.html';
          if (rel === 'docs') return c.html(apiDocsHtml());
          const f = await staticFile(rel);
          if (!f) return c.json({ error: 'not-found', message: `no dashboard file ${c.req.path}` }, 404);
          return c.body(new Uint8Array(f.body), 200, { 'content-type': f.type, 'cache-control': 'no-cache' });
        },
      });
      registerApiDocs(table, ['/docs']);
    },
  };
}
