import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** lit-html's browser ES modules, served as they ship (no build step, no CDN): the folder holding its package.json. */
function litHtmlDir(): string {
  let dir = dirname(fileURLToPath(import.meta.resolve('lit-html')));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
const VENDOR: Record<string, string> = { 'lit-html': litHtmlDir() };

/** A file under `root`, or null for anything outside it, of an unknown type, or missing. */
async function fileUnder(root: string, rel: string, types: Record<string, string>): Promise<{ body: Buffer; type: string } | null> {
  const clean = normalize(rel).replace(/^([/\\])+/, '');
  if (clean.startsWith('..') || clean.includes(`${sep}..`) || clean.includes('\0')) return null;
  const type = types[extname(clean)];
  if (!type) return null;
  try {
    return { body: await readFile(join(root, clean)), type };
  } catch {
    return null;
  }
}

/** /ui/vendor/<package>/<file>.js: only JavaScript of the listed packages. */
function vendorFile(rel: string): Promise<{ body: Buffer; type: string } | null> {
  const [pkg, ...rest] = rel.split('/');
  const root = pkg ? VENDOR[pkg] : undefined;
  if (!root || rest.length === 0) return Promise.resolve(null);
  return fileUnder(root, rest.join('/'), { '.js': TYPES['.js']! });
}

/**
 * The operator dashboard: static HTML/CSS/JS under /ui/ (no build step), lit-html under /ui/vendor/, `/` redirecting
 * to it, and the API docs page (also at /ui/docs). The pages call the same HTTP API with the operator token the user
 * logs in with. Every answer carries the security headers of control-plane/http/security-headers.ts.
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
          const f = rel.startsWith('vendor/') ? await vendorFile(rel.slice('vendor/'.length)) : await fileUnder(STATIC_DIR, rel, TYPES);
          if (!f) return c.json({ error: 'not-found', message: `no dashboard file ${c.req.path}` }, 404);
          return c.body(new Uint8Array(f.body), 200, { 'content-type': f.type, 'cache-control': 'no-cache' });
        },
      });
      registerApiDocs(table, ['/docs']);
    },
  };
}
