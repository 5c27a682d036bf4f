import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { z } from 'zod';
import { ApiError } from './errors.ts';
import { RouteTable, openApiDocument, responseCheckingDefault } from './route-table.ts';

const Thing = z.object({ id: z.string(), size: z.number().int() });

function app(checkResponses: boolean, answer: unknown, status: 200 | 201 = 200) {
  const hono = new Hono();
  hono.onError((e, c) => (e instanceof ApiError ? c.json(e.toJSON(), e.status) : c.json({ error: 'internal' }, 500)));
  const table = new RouteTable(hono, { checkResponses });
  table.add({ method: 'get', path: '/things/:id', tag: 't', summary: 'one thing', response: Thing, handler: (c) => c.json(answer as object, status) });
  table.add({ method: 'post', path: '/things', tag: 't', summary: 'make one', body: z.object({ id: z.string() }), response: Thing, status: 201, handler: (c) => c.json(answer as object, status) });
  return { hono, table };
}

test('an answer that matches its schema passes untouched; extra fields are allowed', async () => {
  const { hono, table } = app(true, { id: 'a', size: 3, extra: true });
  const res = await hono.request('/things/a');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: 'a', size: 3, extra: true });
  assert.deepEqual(table.violations, []);
});

test('a 2xx answer that does not match is a 500 naming the route and the field, and is recorded', async () => {
  const { hono, table } = app(true, { id: 'a', size: 'big' });
  const res = await hono.request('/things/a');
  assert.equal(res.status, 500);
  const body = (await res.json()) as { error: string; message: string };
  assert.equal(body.error, 'response-schema');
  assert.match(body.message, /GET \/things\/:id/);
  assert.match(body.message, /size/);
  assert.equal(table.violations.length, 1);
});

test('a declared status is checked too', async () => {
  const { hono } = app(true, { id: 'a', size: 1 }, 200);
  const res = await hono.request('/things', { method: 'POST', body: JSON.stringify({ id: 'a' }), headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 500);
  assert.match(((await res.json()) as { message: string }).message, /status 200, declared 201/);
});

test('with checking off a mismatch goes out as it is (production: no parse per answer)', async () => {
  const { hono } = app(false, { id: 'a', size: 'big' });
  assert.equal((await hono.request('/things/a')).status, 200);
});

test('checking is on under node --test and by EDGEFLEET_CHECK_RESPONSES, off otherwise', () => {
  assert.equal(responseCheckingDefault({ NODE_TEST_CONTEXT: 'child-v8' }), true);
  assert.equal(responseCheckingDefault({ EDGEFLEET_CHECK_RESPONSES: '1' }), true);
  assert.equal(responseCheckingDefault({ NODE_TEST_CONTEXT: 'child-v8', EDGEFLEET_CHECK_RESPONSES: '0' }), false);
  assert.equal(responseCheckingDefault({}), false);
});

test('OpenAPI carries the response schema under the declared status, and error bodies', () => {
  const { table } = app(true, {});
  const doc = openApiDocument(table.routes, { title: 't', version: '1' }) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: { properties?: Record<string, unknown>; $ref?: string } }> }> }>> };
  const get = doc.paths['/things/{id}']!.get!;
  assert.deepEqual(Object.keys(get.responses['200']!.content!['application/json']!.schema!.properties!).sort(), ['id', 'size']);
  assert.equal(get.responses['404']!.content!['application/json']!.schema!.$ref, '#/components/schemas/Error');
  const post = doc.paths['/things']!.post!;
  assert.ok(post.responses['201'], 'created status documented');
  assert.ok(post.responses['400'], 'a body means a 400 is possible');
});
