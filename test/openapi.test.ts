import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { createStandardRooms } from '../control-plane/compose.ts';
import { createHttpApp } from '../control-plane/http/app.ts';
import type { ControlPlaneExtension } from '../control-plane/server.ts';
import { browserMissing, launchBrowser, screenshot, watchErrors } from './helpers/browser.ts';
import { startTestFleet, type TestFleet } from './helpers/control-plane.ts';

type Spec = { openapi: string; paths: Record<string, Record<string, { summary: string; security?: unknown }>> };
const toOpenApiPath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('OpenAPI document and the /docs page', () => {
  let fleet: TestFleet;
  let browser: Browser | null = null;
  // every standard room (training, registry, delivery, rollouts, tuning, UI): all their routes are in the document
  let rooms: ControlPlaneExtension[] = [];

  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => (rooms = createStandardRooms({ dataDir, ui: true }).extensions));
  });
  after(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  test('every route in the route table, and every route hono knows, appears in /openapi.json with its method', async () => {
    // the same app the server builds, over the running control plane's context, to read its route table
    const { app, table } = createHttpApp(fleet.cp.ctx, rooms.flatMap((r) => (r.routes ? [r.routes] : [])));
    const spec = (await (await app.request('/openapi.json')).json()) as Spec;
    assert.equal(spec.openapi, '3.1.0');
    assert.ok(table.routes.length >= 35, `${table.routes.length} routes`);
    for (const r of table.routes) {
      const op = spec.paths[toOpenApiPath(r.path)]?.[r.method];
      assert.ok(op, `${r.method.toUpperCase()} ${r.path} is missing from /openapi.json`);
      assert.equal(op.summary, r.summary);
      assert.equal(op.security === undefined, r.public, `${r.method} ${r.path}: security matches public`);
    }
    // every route that answers JSON declares what it answers (shared/api/): the contract the dashboard and CLI read
    for (const r of table.routes) {
      const jsonRoute = !r.produces || r.produces.every((t) => t.startsWith('text/csv'));
      if (jsonRoute) assert.ok(r.response, `${r.method.toUpperCase()} ${r.path} has no response schema`);
      if (r.response) {
        const op = spec.paths[toOpenApiPath(r.path)]![r.method] as unknown as { responses: Record<string, { content: Record<string, { schema?: unknown }> }> };
        const ok = op.responses[String(r.status ?? 200)];
        assert.ok(ok?.content['application/json']?.schema, `${r.method} ${r.path}: success response schema in the document`);
      }
    }
    const registered = new Set(table.routes.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    for (const r of app.routes.filter((x) => x.method !== 'ALL')) assert.ok(registered.has(`${r.method} ${r.path}`), `${r.method} ${r.path} bypasses the route table`);

    // and the running server answers the same document
    const served = (await fleet.api('/openapi.json', { auth: null })).body as Spec;
    assert.deepEqual(Object.keys(served.paths).sort(), Object.keys(spec.paths).sort());
  });

  test('/ui/docs (and /docs) render every operation in chromium, and try-it sends the token', { skip: browserMissing() ?? false }, async () => {
    const spec = (await fleet.api('/openapi.json', { auth: null })).body as Spec;
    const operations = Object.values(spec.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
    const docs = await fleet.api('/docs');
    assert.equal(docs.status, 200);
    assert.match(docs.text, /<title>EdgeFleet API<\/title>/);
    const anon = await fleet.api('/docs', { auth: null });
    if (anon.status === 401) console.log('# /docs needs the token until the auth middleware lets public table routes through; /ui/docs is public');

    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(`${fleet.cp.httpUrl}/ui/docs`);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.locator('details.op').count(), operations);
    await page.fill('#token', fleet.token);
    await page.dispatchEvent('#token', 'change');
    const op = page.locator('details.op[data-method="get"][data-path="/devices/{id}"]');
    await op.locator(':scope > summary').click();
    // the response schema of the route is on the page too (from its zod schema in shared/api/)
    await op.locator('details.schema[data-status="200"] > summary').click();
    assert.match((await op.locator('details.schema[data-status="200"] pre').textContent()) ?? '', /"profileMatches"/);
    await op.locator('input[name="path:id"]').fill('no-such-device');
    await op.locator('button[type="submit"]').click();
    await op.locator('.status', { hasText: '404' }).waitFor();
    assert.match(await op.locator('.out').textContent() ?? '', /device \\?"no-such-device\\?" not found/);
    await screenshot(page, '09-api-docs');
    assert.deepEqual(errors, []);
  });
});
