import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { runCli } from '../control-plane/cli/program.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import { browserMissing, launchBrowser, screenshot, watchErrors } from './helpers/browser.ts';
import { startTestFleet, waitFor, waitForOnlineWithProfiles, type TestFleet } from './helpers/control-plane.ts';
import { makeDeliveryTestModels } from './helpers/models.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

const skipBrowser = browserMissing();
const work = mkdtempSync(join(tmpdir(), 'ef-ui-rollouts-'));
const models = skipBrowser ? null : makeDeliveryTestModels(work);
const skip = skipBrowser ?? (models ? null : 'needs /usr/bin/python3 with torch and onnx');
/** Short runs, as in test/rollouts.test.ts: the page is under test, not the benchmark. */
const QUICK_BENCH = { threads: 1, warmupQueries: 2, minQueries: 10, minSeconds: 0, maxSeconds: 10, throughputBatchSize: 4, profileOps: false };
const PROFILES = ['x86-64-vnni', 'armv82-dotprod', 'generic-cpu'] as const;
const AGENTS = 6;

/** The CLI in-process, with captured output and a home folder of its own. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: { HOME: mkdtempSync(join(tmpdir(), 'ef-ui-ro-home-')) }, cwd: mkdtempSync(join(tmpdir(), 'ef-ui-ro-cwd-')), interrupted: () => new Promise(() => {}) });
  return { code, out, err };
}

type RolloutDevice = { deviceId: string; profileId: string; wave: number; state: string; p50Ms: number | null };

describe('dashboard against a real rollout: rollouts, model report and models pages', { skip: skip ?? false }, () => {
  let fleet: TestFleet;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const agents: AgentHandle[] = [];
  const refs: { modelId: string; version: number; profileId: string }[] = [];
  let rolloutId = '';

  const register = async (body: Record<string, unknown>) => {
    const r = await fleet.api('/models', { method: 'POST', json: body });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body as { id: string; version: number };
  };

  before(async () => {
    fleet = await startTestFleet('embedded', { presenceTimeoutMs: 60_000 }, (dataDir) => createStandardRooms({ dataDir, rolloutBenchmark: QUICK_BENCH, rolloutTickMs: 250, ui: true }).extensions);
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 20 } })).body.token;
    const root = mkdtempSync(join(tmpdir(), 'ef-ui-ro-agents-'));
    agents.push(...(await Promise.all(Array.from({ length: AGENTS }, (_, i) => {
      const sim = SIMULATED.find((s) => s.expectProfile === PROFILES[i % PROFILES.length])!;
      return startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: join(root, `a${i}`), enrollmentToken: token, deviceId: `uiro-${sim.kind}-${i}`, facts: sim.facts, heartbeatIntervalMs: 2000 });
    }))));
    await waitForOnlineWithProfiles(fleet, AGENTS);
    const baseline = await register({ name: 'cnn', file: models!.fp32, kind: 'fp32', role: 'imported' });
    for (const profileId of PROFILES) {
      const m = await register({
        name: 'cnn', file: models!.int8, kind: 'int8', profileId, centralAccuracy: 0.95,
        companions: { evalset: models!.evalSet, referencePredictions: models!.referencePredictions, fp32Baseline: { modelId: baseline.id, version: baseline.version } },
      });
      refs.push({ modelId: m.id, version: m.version, profileId });
    }
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = watchErrors(page);
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=300#/fleet`);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#token', fleet.token);
    await page.click('#login button');
    await page.waitForSelector('[data-stat="devices"]');
  });
  after(async () => {
    await browser?.close();
    await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
    await fleet?.stop();
  });

  test('the rollout page follows a running rollout live to "succeeded", with the per-device states of the API', async () => {
    const created = await fleet.api('/rollouts', {
      method: 'POST',
      json: { name: 'cnn v1 (dashboard)', models: refs, waves: { canary: { count: 2 }, then: { percents: [100] } }, gates: { maxFailurePercent: 0, deviceTimeoutSeconds: 120 } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    rolloutId = created.body.summary.id;
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=300#/rollouts/${encodeURIComponent(rolloutId)}`);
    await page.waitForSelector('#rollout-devices');
    await page.evaluate('window.__noReload = true');
    const stateOf = () => page.getAttribute('#rollout-state [data-state]', 'data-state');
    assert.equal(await stateOf(), 'running', 'opened while the rollout runs');
    assert.equal(await page.locator('#rollout-devices tbody tr').count(), AGENTS);
    assert.equal(await page.locator('#waves tbody tr').count(), 2);
    // the page polls: it reaches succeeded by itself
    // selector waits, not waitForFunction: the page's CSP forbids the eval that a string predicate needs
    await page.waitForSelector('#rollout-state [data-state="succeeded"]', { timeout: 90_000 });
    assert.equal(await page.evaluate('window.__noReload'), true, 'same page, no reload');
    // one more poll so the device rows are from after the final state, then compare with the API
    await page.waitForSelector('#rollout-devices tbody tr [data-state]:not([data-state="active"])', { state: 'detached', timeout: 10_000 });
    const api = (await fleet.api(`/rollouts/${rolloutId}`)).body as { summary: { state: string }; devices: RolloutDevice[]; waves: { wave: number; state: string }[] };
    assert.equal(api.summary.state, 'succeeded');
    for (const d of api.devices) {
      const row = `#rollout-devices tr[data-device="${d.deviceId}"]`;
      assert.equal(await page.getAttribute(`${row} [data-state]`, 'data-state'), d.state, d.deviceId);
      assert.equal(await page.textContent(`${row} td:nth-child(2)`), d.profileId);
      assert.equal(await page.textContent(`${row} td:nth-child(3)`), String(d.wave));
    }
    for (const w of api.waves) assert.equal(await page.getAttribute(`#waves tr[data-wave="${w.wave}"] [data-state]`, 'data-state'), w.state);
    assert.match(await page.textContent('#device-counts') ?? '', new RegExp(`active ${AGENTS}`));
    await screenshot(page, '10-rollout-live');

    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=300#/rollouts`);
    await page.waitForSelector(`#rollouts tr[data-rollout="${rolloutId}"]`);
    assert.equal(await page.getAttribute(`#rollouts tr[data-rollout="${rolloutId}"] [data-state]`, 'data-state'), 'succeeded');
    assert.equal(await page.textContent(`#rollouts tr[data-rollout="${rolloutId}"] [data-k="devices"]`), String(AGENTS));
  });

  test("the model report page draws one point per device report and shows the API's numbers", async () => {
    assert.ok(rolloutId, 'needs the rollout of the test before');
    const ref = refs[0]!;
    const report = await waitFor('reports for every device of the profile', async () => {
      const r = (await fleet.api(`/reports/models/${ref.modelId}`)).body;
      return r.devices.length === AGENTS / PROFILES.length ? r : null;
    }, 20_000, 250);
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=60000#/models/${encodeURIComponent(ref.modelId)}/report`);
    await page.waitForSelector('#report-devices');
    const count = (s: string) => page.locator(s).count();
    assert.equal(await count('svg[data-chart="device-latency-accuracy"] circle.pt'), report.devices.length, 'one scatter point per device report');
    assert.equal(await count('svg[data-chart="latency-by-profile"] circle.pt'), report.devices.length, "one latency dot per device's p50");
    assert.equal(await count('svg[data-chart="latency-by-profile"] g.box'), report.profiles.length);
    assert.equal(await count('svg[data-chart="speedup"] rect.bar'), report.devices.filter((d: { speedupVsFp32: number | null }) => d.speedupVsFp32 !== null).length);
    assert.equal(await count('#report-devices tbody tr'), report.devices.length);
    const v = async (sel: string) => {
      const raw = await page.getAttribute(sel, 'data-v');
      return raw === '' || raw === null ? null : Number(raw);
    };
    for (const p of report.profiles) {
      const row = `#report-profiles tr[data-profile="${p.profileId}"]`;
      for (const k of ['devices', 'medianP50Ms', 'medianP90Ms', 'medianPeakRssBytes', 'medianAccuracy', 'centralAccuracy', 'accuracyDeltaVsCentral', 'medianSpeedupVsFp32', 'medianFp32P50Ms']) {
        assert.equal(await v(`${row} [data-k="${k}"]`), p[k], `${p.profileId} ${k}`);
      }
      assert.ok(p.medianP50Ms > 0 && p.centralAccuracy === 0.95, JSON.stringify(p));
    }
    for (const d of report.devices) {
      const row = `#report-devices tr[data-device="${d.deviceId}"][data-version="${d.version}"]`;
      for (const k of ['p50Ms', 'p90Ms', 'p99Ms', 'accuracy', 'fp32P50Ms', 'speedupVsFp32']) assert.equal(await v(`${row} [data-k="${k}"]`), d[k], `${d.deviceId} ${k}`);
      // its point sits where its numbers say: the title names the device, its p50 and accuracy
      const titles = await page.locator('svg[data-chart="device-latency-accuracy"] circle.pt title').allTextContents();
      assert.ok(titles.some((t) => t.startsWith(`${d.deviceId}: `)), `${d.deviceId} in ${titles.join(' | ')}`);
    }
    await screenshot(page, '11-model-report');
  });

  test('the CLI reads the same rollout and model report shapes', async () => {
    assert.ok(rolloutId, 'needs the rollout of the first test');
    const conn = ['--server', fleet.cp.httpUrl, '--token', fleet.token];
    const ro = await cli([...conn, 'report', 'rollout', rolloutId]);
    assert.equal(ro.code, 0, ro.err);
    assert.match(ro.out, new RegExp(`rollout: ${rolloutId} \\(cnn v1 \\(dashboard\\)\\)\\s+state: succeeded`));
    for (const a of agents) assert.match(ro.out, new RegExp(`^${a.deviceId}\\s+\\S+\\s+\\d\\s+active\\s+cnn-`, 'm'));
    const csv = await cli([...conn, 'report', 'rollout', rolloutId, '--csv']);
    assert.equal(csv.out.trim().split('\n').length, AGENTS + 1, csv.out);
    assert.match(csv.out.split('\n')[0]!, /^deviceId,profileId,wave,state/);
    const ref = refs[0]!;
    const report = (await fleet.api(`/reports/models/${ref.modelId}`)).body;
    const mo = await cli([...conn, 'report', 'model', ref.modelId]);
    assert.equal(mo.code, 0, mo.err);
    assert.match(mo.out, new RegExp(`^${ref.profileId}\\s+${report.profiles[0].devices}\\s+1\\s`, 'm'), mo.out);
    for (const d of report.devices) assert.match(mo.out, new RegExp(`^${d.deviceId}\\s+${ref.profileId}\\s+1\\s`, 'm'));
    const mcsv = await cli([...conn, 'report', 'model', ref.modelId, '--csv']);
    assert.match(mcsv.out.split('\n')[0]!, /^profileId,devices,versions,medianP50Ms/);
  });

  test('the models page shows every registered version', async () => {
    const list = (await fleet.api('/models?limit=1000')).body as { items: { id: string; version: number; profileId: string | null; kind: string }[]; total: number };
    assert.equal(list.total, 1 + PROFILES.length);
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=60000#/models`);
    await page.waitForSelector('#models');
    assert.equal(await page.locator('#models tbody tr').count(), list.total);
    for (const m of list.items) {
      const row = `#models tr[data-model="${m.id}"][data-version="${m.version}"]`;
      assert.equal(await page.locator(row).count(), 1, `${m.id} v${m.version}`);
      assert.equal(await page.textContent(`${row} td:nth-child(3)`), String(m.version));
      assert.equal(await page.textContent(`${row} td:nth-child(4)`), m.profileId ?? '–');
      assert.equal(await page.textContent(`${row} td:nth-child(6)`), m.kind);
    }
    await screenshot(page, '12-models');
    // the model page lists its versions too
    await page.goto(`${fleet.cp.httpUrl}/ui/?poll=60000#/models/${encodeURIComponent(refs[1]!.modelId)}`);
    await page.waitForSelector('#page h1');
    assert.match(await page.textContent('#page h1') ?? '', /v1/);
    assert.deepEqual(errors, []);
  });
});

if (skip) test('dashboard rollout browser tests', { skip }, () => {});
