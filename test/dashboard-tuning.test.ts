import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import type { TuningView } from '../shared/tuning.ts';
import { browserMissing, launchBrowser, screenshot, watchErrors } from './helpers/browser.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';
import { makeTuningCandidates } from './helpers/tuning-models.ts';

/** The tuning page: the measured Pareto front per profile with the chosen point marked, points linked to their model versions. */

const work = mkdtempSync(join(tmpdir(), 'ef-ui-tuning-'));
const large = makeTuningCandidates(work, 'large');
const skip = browserMissing() ?? (large ? false : 'needs /usr/bin/python3 with torch and onnx');
const QUICK_BENCH = { threads: 1, warmupQueries: 5, minQueries: 50, minSeconds: 0, maxSeconds: 20, throughputBatchSize: 4, profileOps: true };

let fleet: TestFleet;
let browser: Browser;
let page: Page;
let errors: string[] = [];
const agents: AgentHandle[] = [];

before(async () => {
  if (skip) return;
  fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, tuningBenchmark: QUICK_BENCH, tuningIdle: { maxLoadPerCore: 1000 }, tuningTickMs: 250, tuningMaxConcurrentEvaluations: 1 }).extensions);
  const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 5 } })).body.token;
  const sim = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!;
  for (const i of [0, 1]) agents.push(await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: mkdtempSync(join(tmpdir(), 'ef-uit-agent-')), enrollmentToken: token, deviceId: `uit-${i}`, facts: sim.facts, heartbeatIntervalMs: 2000 }));
  await waitFor('2 devices online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === 2, 30_000);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
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

test('the tuning page draws each profile\'s measured front, marks the choice, links each point, and approves', { skip }, async () => {
  const reg = async (body: Record<string, unknown>) => {
    const r = await fleet.api('/models', { method: 'POST', json: body });
    assert.equal(r.status, 201, r.text);
    return r.body as { id: string; version: number };
  };
  const companions = { evalset: large!.evalSet, referencePredictions: large!.referencePredictions };
  const fp32 = await reg({ name: 'ui', file: large!.fp32, kind: 'fp32', companions });
  const int8 = await reg({ name: 'ui', file: large!.int8, kind: 'int8', profileId: 'x86-64-vnni', companions });
  const broken = await reg({ name: 'ui-broken', file: large!.broken, kind: 'int8', profileId: 'x86-64-vnni', companions });
  const profileId = 'x86-64-vnni';
  const created = await fleet.api('/tunings', {
    method: 'POST',
    json: { name: 'ui', candidates: [{ profileId, modelId: fp32.id, version: fp32.version }, { profileId, modelId: int8.id, version: int8.version, label: 'int8' }, { profileId, modelId: broken.id, version: broken.version, label: 'int8-broken' }] },
  });
  assert.equal(created.status, 201, created.text);
  const id = created.body.id as string;
  const v = await waitFor('decided', async () => {
    const t = (await fleet.api(`/tunings/${id}`)).body as TuningView;
    return t.state === 'awaiting-approval' ? t : null;
  }, 180_000, 250);

  await page.goto(`${fleet.cp.httpUrl}/ui/?poll=300#/tunings`);
  await page.waitForSelector(`#tunings tr[data-tuning="${id}"]`);
  await page.goto(`${fleet.cp.httpUrl}/ui/?poll=300#/tunings/${encodeURIComponent(id)}`);
  await page.waitForSelector(`[data-chart="tuning-pareto-${profileId}"]`);
  const d = v.decisions[0]!;
  assert.equal(await page.getAttribute(`#decision-${profileId}`, 'data-chosen'), d.chosen!.key);
  for (const c of v.candidates) {
    const point = `[data-chart="tuning-pareto-${profileId}"] a[data-point="${c.key}"]`;
    assert.equal(await page.getAttribute(point, 'href'), `#/models/${c.modelId}`, `${c.key} links to its model version`);
    assert.equal(await page.getAttribute(point, 'data-status'), c.status);
    assert.equal(await page.getAttribute(`#tuning-candidates-${profileId} tr[data-candidate="${c.key}"]`, 'data-status'), c.status);
  }
  assert.equal(await page.locator(`[data-chart="tuning-pareto-${profileId}"] .chosen-ring`).count(), 1);
  assert.equal(await page.locator(`[data-chart="tuning-pareto-${profileId}"] a[data-point="${d.chosen!.key}"] .chosen-ring`).count(), 1, 'the ring is on the chosen point');
  assert.match((await page.textContent(`#tuning-candidates-${profileId} tr[data-candidate="int8-broken"]`)) ?? '', /accuracy drop/);
  await screenshot(page, '20-tuning');

  await page.click('button[data-action="approve"]');
  await page.waitForSelector('#tuning-state [data-state="done"]', { timeout: 30_000 });
  const after = (await fleet.api(`/tunings/${id}`)).body as TuningView;
  assert.ok(after.rolloutId);
  assert.deepEqual(errors, []);
});
