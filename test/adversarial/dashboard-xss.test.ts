// Issue 8 item 1: one enrolled device must never run script in the operator's browser. A device enrolled by the wire
// protocol alone announces facts whose every string is an HTML/script payload, sends heartbeats and install reports
// with payloads, and the operator's labels carry payloads too; the dashboard in Chromium must show them as text, run
// nothing and send nothing anywhere but its own origin. Every answer carries the strict security headers.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { newMsgId } from '../../shared/messages.ts';
import { deviceTopic } from '../../shared/topics.ts';
import { createStandardRooms } from '../../control-plane/compose.ts';
import { browserMissing, launchBrowser, screenshot, watchErrors } from '../helpers/browser.ts';
import { startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { connectRaw, enrollRaw } from '../helpers/raw-device.ts';

const skip = browserMissing();
const DEVICE = 'hostile-01';

/**
 * A payload that, if it ever became markup, would run: it records itself in window.__xss and asks a non-origin URL.
 * `max` keeps it inside the field's length limit (shorter payloads keep the live part).
 */
function payload(tag: string, max = 255): string {
  const long = `"><img src=x onerror="(window.__xss=window.__xss||[]).push('${tag}');fetch('http://127.0.0.2:9/${tag}')"><script>(window.__xss=window.__xss||[]).push('s-${tag}')</script>`;
  if (long.length <= max) return long;
  const mid = `<img src=x onerror=__xss=['${tag}']>`;
  return mid.length <= max ? mid : '<svg onload=__xss=1>'.slice(0, max);
}

describe('dashboard: a hostile device cannot run script in the operator browser (issue 8 item 1)', { skip: skip ?? false }, () => {
  let fleet: TestFleet;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let device: MqttClient;
  const requests: string[] = [];
  const dialogs: string[] = [];
  const facts = {
    hostname: payload('hostname'),
    platform: payload('platform', 32),
    arch: payload('arch', 32),
    os: { distro: payload('distro', 128), release: payload('release', 64), kernel: payload('kernel', 128) },
    cpu: { manufacturer: payload('manufacturer', 128), brand: payload('brand', 256), cores: 4, physicalCores: 2, flags: ['avx2', payload('flag', 64)] },
    memoryBytes: 2 ** 31,
    gpus: [{ vendor: payload('gpu-vendor', 128), model: payload('gpu-model', 256) }],
    deviceTreeModel: payload('dtmodel', 256),
    tegraRelease: payload('tegra', 256),
    hasTrtexec: false,
  };
  const labelValue = payload('label', 128);
  const reason = payload('reason', 1000);

  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: true }).extensions);
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: payload('token-label', 128) } })).body.token as string;
    const { password } = await enrollRaw(fleet.cp.brokerUrl, token, DEVICE);
    device = await connectRaw(fleet.cp.brokerUrl, { clientId: DEVICE, username: DEVICE, password });
    await device.publishAsync(deviceTopic(DEVICE, 'status'), JSON.stringify({ v: 1, state: 'online', ts: Date.now() }), { qos: 1, retain: true });
    const birth = { v: 1, msgId: newMsgId(), ts: Date.now(), type: 'birth', deviceId: DEVICE, agentVersion: payload('agent', 32), facts, profileHint: null, currentModel: null, seq: 0 };
    await device.publishAsync(deviceTopic(DEVICE, 'birth'), JSON.stringify(birth), { qos: 1 });
    await waitFor('the hostile birth stored', async () => (await fleet.api(`/devices/${DEVICE}`)).body?.facts?.hostname === facts.hostname);
    for (let i = 0; i < 3; i++) {
      const hb = { v: 1, msgId: newMsgId(), ts: Date.now(), type: 'heartbeat', agentVersion: payload('hb-agent', 32), uptimeSeconds: 10 + i, load1: 0.5 + i / 10, cpuPercent: 12, memUsedBytes: 2 ** 30, memTotalBytes: 2 ** 31, temperatureC: 50 + i, activeModel: null };
      await device.publishAsync(deviceTopic(DEVICE, 'heartbeat'), JSON.stringify(hb), { qos: 1 });
    }
    await fleet.api(`/devices/${DEVICE}`, { method: 'PATCH', json: { labels: { site: labelValue } } });
    // an install the control plane offered, which the device then reports as failed with a payload reason
    const work = mkdtempSync(join(tmpdir(), 'ef-xss-'));
    const file = join(work, 'model.onnx');
    writeFileSync(file, Buffer.alloc(4096, 7));
    const d = await fleet.api('/deliveries', {
      method: 'POST',
      json: { deviceId: DEVICE, source: { modelId: 'xss-model', version: 1, profileId: 'generic-cpu', recipeId: 'fp32', kind: 'fp32', modelPath: file, centralAccuracy: null } },
    });
    assert.equal(d.status, 202, d.text);
    const report = { v: 1, msgId: newMsgId(), ts: Date.now(), kind: 'install-state', rolloutId: null, model: { modelId: 'xss-model', version: 1 }, state: 'failed', progress: null, reason };
    await device.publishAsync(deviceTopic(DEVICE, 'report'), JSON.stringify(report), { qos: 1 });
    await waitFor('the failed install stored', async () => (await fleet.api(`/devices/${DEVICE}/installs`)).body?.installs?.[0]?.state === 'failed');

    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = watchErrors(page);
    const origin = new URL(fleet.cp.httpUrl).origin;
    page.on('request', (r) => {
      if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:')) requests.push(r.url());
    });
    page.on('dialog', (dlg) => {
      dialogs.push(dlg.message());
      void dlg.dismiss();
    });
  });
  after(async () => {
    await browser?.close();
    await device?.endAsync().catch(() => {});
    await fleet?.stop();
  });

  test('control: the payloads are live markup in a page without the dashboard (so the test below can fail)', async () => {
    const p = await browser.newPage();
    await p.setContent(`<div>${facts.hostname}</div>`);
    await p.waitForFunction('Array.isArray(window.__xss) && window.__xss.length >= 1', undefined, { timeout: 5000 });
    await p.close();
  });

  test('fleet and device pages show every payload as text; no script runs, nothing leaves the origin', async () => {
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=400#/fleet`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', fleet.token);
    await page.click('#login button');
    await page.waitForSelector(`#devices tr[data-device="${DEVICE}"]`);
    assert.match((await page.textContent(`#devices tr[data-device="${DEVICE}"]`)) ?? '', /site=/);
    assert.ok(((await page.textContent(`#devices tr[data-device="${DEVICE}"]`)) ?? '').includes(labelValue), 'label payload shown as text');
    await screenshot(page, 'xss-01-fleet');

    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=400#/devices/${DEVICE}`);
    await page.waitForSelector('#facts');
    await page.waitForSelector('#installs');
    const cell = async (key: string) => page.textContent(`#facts [data-key="${key}"] td:last-child`);
    assert.equal(await cell('hostname'), facts.hostname);
    assert.equal(await cell('cpu.brand'), facts.cpu.brand);
    assert.equal(await cell('os.distro'), facts.os.distro);
    assert.equal(await cell('deviceTreeModel'), facts.deviceTreeModel);
    assert.equal(await cell('tegraRelease'), facts.tegraRelease);
    assert.equal(await cell('gpus.0.model'), facts.gpus[0]!.model);
    assert.equal(await cell('gpus.0.vendor'), facts.gpus[0]!.vendor);
    assert.ok(((await cell('cpu.flags')) ?? '').includes(facts.cpu.flags[1]!), 'cpu flag shown as text');
    assert.ok(((await page.textContent('#installs')) ?? '').includes(reason), 'install failure reason shown as text');
    assert.ok(((await page.textContent('#profile')) ?? '').includes(labelValue), 'label shown as text on the device page');
    // no element the payloads would have made exists anywhere in the page
    assert.equal(await page.locator('#page img, #page script, #page svg[onload], #page [onerror]').count(), 0);
    await screenshot(page, 'xss-02-device');

    for (const hash of ['#/enrollment', '#/rollouts', '#/models', '#/training']) {
      await page.goto(`${fleet.cp.httpUrl}/ui/?poll=400${hash}`);
      await page.waitForSelector('#page h1');
    }
    assert.ok(((await page.goto(`${fleet.cp.httpUrl}/ui/?poll=400#/enrollment`), await page.waitForSelector('#tokens'), await page.textContent('#tokens')) ?? '').includes('token-label'), 'token label shown as text');
    await page.waitForTimeout(1000); // let a few polls re-render: a payload must not run on re-render either
    assert.equal(await page.evaluate('window.__xss === undefined'), true, `script ran: ${await page.evaluate('JSON.stringify(window.__xss)')}`);
    assert.deepEqual(requests, [], 'no request left the origin');
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
  });

  test('Trusted Types: the dashboard page refuses any HTML string written into the DOM', async () => {
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=60000#/fleet`);
    await page.waitForSelector('#devices');
    const refused = await page.evaluate(`(() => { try { document.body.insertAdjacentHTML('beforeend', ${JSON.stringify(facts.hostname)}); return false; } catch (e) { return e instanceof TypeError; } })()`);
    assert.equal(refused, true, 'a string into insertAdjacentHTML must throw under require-trusted-types-for');
    assert.equal(await page.evaluate('window.__xss === undefined'), true);
  });

  test('every answer carries the strict security headers: dashboard, docs, API (200, 401, 404), static files', async () => {
    const cases: [string, string | null, number][] = [
      ['/ui/', null, 200],
      ['/ui/app.js', null, 200],
      ['/ui/vendor/lit-html/lit-html.js', null, 200],
      ['/docs', null, 200],
      ['/ui/docs', null, 200],
      ['/openapi.json', null, 200],
      ['/devices', fleet.token, 200],
      [`/devices/${DEVICE}`, fleet.token, 200],
      ['/devices', null, 401],
      ['/no-such-route', fleet.token, 404],
      ['/ui/no-such-file.js', null, 404],
    ];
    for (const [path, auth, status] of cases) {
      const res = await fetch(fleet.cp.httpUrl + path, { headers: auth ? { authorization: `Bearer ${auth}` } : {}, redirect: 'manual' });
      await res.arrayBuffer();
      assert.equal(res.status, status, path);
      const csp = res.headers.get('content-security-policy') ?? '';
      const directive = (name: string) => csp.split(';').map((d) => d.trim()).find((d) => d.startsWith(`${name} `)) ?? '';
      assert.match(directive('script-src'), /^script-src 'self'$/, `${path}: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(directive('frame-ancestors'), "frame-ancestors 'none'", path);
      assert.equal(directive('object-src'), "object-src 'none'", path);
      assert.equal(directive('require-trusted-types-for'), "require-trusted-types-for 'script'", path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    }
    // the vendored module is served as JavaScript and only from lit-html's own folder
    assert.equal((await fetch(`${fleet.cp.httpUrl}/ui/vendor/lit-html/../../package.json`)).status, 404);
    assert.equal((await fetch(`${fleet.cp.httpUrl}/ui/vendor/lit-html/package.json`)).status, 404);
    assert.equal((await fetch(`${fleet.cp.httpUrl}/ui/vendor/other/index.js`)).status, 404);
    // no page carries inline script: every <script> has a src
    for (const path of ['/ui/', '/docs']) {
      const text = await (await fetch(fleet.cp.httpUrl + path)).text();
      for (const m of text.matchAll(/<script\b[^>]*>/g)) assert.match(m[0], /\ssrc=/, `${path}: inline script ${m[0]}`);
      assert.doesNotMatch(text, /<style\b|\sstyle=|\son[a-z]+=/i, `${path}: inline style or handler`);
    }
  });
});

if (skip) test('dashboard XSS tests', { skip }, () => {});
