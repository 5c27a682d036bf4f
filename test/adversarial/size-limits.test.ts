import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createStandardRooms } from '../../control-plane/compose.ts';
import { HTTP_BODY_LIMIT_BYTES } from '../../control-plane/http/request-guards.ts';
import { DeviceFactsSchema } from '../../shared/facts.ts';
import { DevicePatchSchema } from '../../shared/http.ts';
import { BenchmarkResultSchema, XferRequestSchema } from '../../shared/messages.ts';
import { RolloutCreateSchema } from '../../shared/rollouts.ts';
import { startTestFleet, type TestFleet } from '../helpers/control-plane.ts';

/**
 * Issue 8 item 6 (HTTP part): a 300 MB body was parsed (RSS 421 -> 1,325 MiB) and a 100 MB array in POST /rollouts
 * (waves.then.percents) blocked the event loop for a minute. Replayed: every route refuses an over-limit body with
 * 413 before reading it, a body that is not JSON with 415, and arrays past their maxItems with 400, quickly.
 * HTTP only, so one broker is enough.
 */
const MiB = 1024 * 1024;

/** A raw HTTP/1.1 request over a socket: lets the test announce a 300 MB body and send only its first bytes. */
function rawRequest(url: string, head: string, body: Buffer): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname);
    let data = '';
    s.on('data', (d) => {
      data += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m && data.includes('\r\n\r\n')) {
        s.destroy();
        resolve({ status: Number(m[1]), text: data });
      }
    });
    s.on('error', (e) => (data ? resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), text: data }) : reject(e)));
    s.write(head);
    s.write(body);
  });
}

/** A chunked POST that streams `total` bytes in 64 KiB pieces unless the server answers first. */
function chunkedPost(url: string, token: string, total: number): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e) => (/EPIPE|ECONNRESET/.test(String(e)) ? undefined : reject(e)));
    let sent = 0;
    const piece = Buffer.alloc(64 * 1024, 0x20);
    const pump = (): void => {
      while (sent < total) {
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    req.write('[');
    pump();
  });
}

describe('HTTP size and type limits', () => {
  let fleet: TestFleet;
  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: false }).extensions);
  });
  after(async () => fleet?.stop());

  test('a body announced as 300 MB is refused with 413 before it is read; RSS does not move', async () => {
    const rssBefore = process.memoryUsage().rss;
    const u = new URL(fleet.cp.httpUrl);
    const head = `POST /rollouts HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${fleet.token}\r\nContent-Type: application/json\r\nContent-Length: ${300 * MiB}\r\n\r\n`;
    const r = await rawRequest(fleet.cp.httpUrl, head, Buffer.from('{"models":['));
    assert.equal(r.status, 413, r.text);
    assert.match(r.text, /payload-too-large/);
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * MiB, 'RSS grew by less than 64 MiB');
  });

  test('a chunked body (no content-length) is cut off at the limit with 413; RSS bounded', async () => {
    const rssBefore = process.memoryUsage().rss;
    const status = await chunkedPost(`${fleet.cp.httpUrl}/rollouts`, fleet.token, 40 * MiB);
    assert.equal(status, 413);
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * MiB, `RSS grew by ${((process.memoryUsage().rss - rssBefore) / MiB).toFixed(0)} MiB`);
  });

  test('every body-taking route refuses an over-limit body and a non-JSON body', async () => {
    const big = 'x'.repeat(HTTP_BODY_LIMIT_BYTES + 1);
    for (const [method, path] of [
      ['POST', '/rollouts'],
      ['POST', '/enrollment-tokens'],
      ['POST', '/deliveries'],
      ['POST', '/training-jobs'],
      ['POST', '/models'],
      ['PATCH', '/devices/dev-1'],
    ] as const) {
      // raw: the server answers 413 without reading the body, so a client still sending sees the socket close
      const u = new URL(fleet.cp.httpUrl);
      const head = `${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${fleet.token}\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n`;
      const over = await rawRequest(fleet.cp.httpUrl, head, Buffer.from(big));
      assert.equal(over.status, 413, `${method} ${path} over the limit: ${over.text.slice(0, 200)}`);
      const text = await fleet.api(path, { method, body: '{"label":"x"}', headers: { 'content-type': 'text/plain' } });
      assert.equal(text.status, 415, `${method} ${path} as text/plain: ${text.text.slice(0, 200)}`);
      const form = await fleet.api(path, { method, body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(form.status, 415, `${method} ${path} as a form`);
    }
    const metrics = await fleet.api('/metrics');
    assert.match(metrics.text, /edgefleet_http_bodies_refused_total\{reason="too-large"\} [1-9]/);
    assert.match(metrics.text, /edgefleet_http_bodies_refused_total\{reason="unsupported-media-type"\} [1-9]/);
  });

  test('a huge waves.then.percents array is a quick 400 naming the field; the event loop stays free', async () => {
    const percents = Array.from({ length: 250_000 }, (_, i) => (i % 100) + 1); // ~750 KB of JSON, under the limit
    const body = { models: [{ modelId: 'm-x', version: 1, profileId: 'generic-cpu' }], waves: { then: { percents } } };
    assert.ok(JSON.stringify(body).length < HTTP_BODY_LIMIT_BYTES);
    let maxGapMs = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const t = performance.now();
      maxGapMs = Math.max(maxGapMs, t - last);
      last = t;
    }, 10);
    const started = performance.now();
    const r = await fleet.api('/rollouts', { method: 'POST', json: body });
    const ms = performance.now() - started;
    clearInterval(probe);
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.match(r.text, /percents/);
    assert.ok(ms < 3000, `answered in ${ms.toFixed(0)} ms`);
    assert.ok(maxGapMs < 1000, `event loop blocked for ${maxGapMs.toFixed(0)} ms`);
  });

  test('every array, string and record a device or client sends has a bound', () => {
    assert.equal(RolloutCreateSchema.safeParse({ models: [{ modelId: 'm', version: 1, profileId: 'p' }], waves: { then: { percents: Array.from({ length: 101 }, (_, i) => i + 1) } } }).success, false);
    assert.equal(RolloutCreateSchema.safeParse({ models: Array.from({ length: 65 }, (_, i) => ({ modelId: `m${i}`, version: 1, profileId: `p${i}` })) }).success, false);
    assert.equal(RolloutCreateSchema.safeParse({ models: [{ modelId: 'm', version: 1, profileId: 'p' }], labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }).success, false);
    assert.equal(DevicePatchSchema.safeParse({ labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }).success, false);
    assert.equal(XferRequestSchema.safeParse({ v: 1, msgId: 'm'.repeat(10), ts: 1, transferId: 't', chunks: Array.from({ length: 1025 }, (_, i) => i) }).success, false);
    const facts = { platform: 'linux', arch: 'x64', cpu: { cores: 1, flags: [] }, memoryBytes: 1 };
    assert.equal(DeviceFactsSchema.safeParse({ ...facts, hostname: 'h'.repeat(256) }).success, false);
    assert.equal(DeviceFactsSchema.safeParse({ ...facts, cpu: { cores: 1, flags: Array.from({ length: 1025 }, () => 'f') } }).success, false);
    assert.equal(DeviceFactsSchema.safeParse({ ...facts, memoryBytes: 2 ** 53 }).success, false);
    const lat = { p50: 1, p90: 2, p99: 3, mean: 1.5, min: 0.5, max: 4, count: 10 };
    const result = { runtime: 'onnxruntime-cpu', threads: 1, sessionCreateMs: 1, latencyMs: lat, throughputPerSecond: 1, throughputBatchSize: 1, peakRssBytes: 1, fileSizeBytes: 1, accuracy: null, agreement: null, integerKernelShare: null };
    assert.equal(BenchmarkResultSchema.safeParse(result).success, true);
    assert.equal(BenchmarkResultSchema.safeParse({ ...result, latencyMs: { ...lat, p50: 5_000_000, p90: 5_000_000, p99: 5_000_000, max: 5_000_000, mean: 5 } }).success, false, 'hour-plus latencies');
    assert.equal(BenchmarkResultSchema.safeParse({ ...result, latencyMs: { ...lat, p50: 10 } }).success, false, 'p50 above p90');
    assert.equal(BenchmarkResultSchema.safeParse({ ...result, topOps: [{ op: 'o'.repeat(200), ms: 1, share: 0.5 }] }).success, false);
  });
});
