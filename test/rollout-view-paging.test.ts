// GET /rollouts/:id at fleet size: the waves and per-state counts are the whole rollout, the devices come a page at a
// time (?limit, ?after, ?state, ?wave), and walking the pages gives exactly the devices of the full report. The
// rollout page of the dashboard shows one page with a pager and state filters. A real control plane over SQLite; the
// rollout's 1,234 device rows are written through the rollout store (no agents: this is about reading them).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createStandardRooms } from '../control-plane/compose.ts';
import { RolloutStore } from '../control-plane/rollouts/rollout-store.ts';
import { RolloutCreateSchema } from '../shared/rollouts.ts';
import { browserMissing, openDashboard, screenshot } from './helpers/browser.ts';
import { startTestFleet, type TestFleet } from './helpers/control-plane.ts';

const N = 1234;
const WAVES = [1, 123, N - 124];
const STATES = ['active', 'active', 'failed', 'pending', 'sent', 'rolled-back', 'timed-out', 'benchmarking'] as const;
const ID = 'ro-paged';

describe('GET /rollouts/:id pages its devices; waves and counts stay whole', () => {
  let fleet: TestFleet;
  let report: { waves: unknown[]; devices: { deviceId: string; wave: number; state: string }[] };

  before(async () => {
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: true }).extensions);
    const store = new RolloutStore(fleet.cp.ctx.db);
    const devices = Array.from({ length: N }, (_, i) => ({
      deviceId: `pg-${String((i * 611) % N).padStart(4, '0')}`,
      profileId: 'generic-cpu',
      modelId: 'cnn-generic-cpu',
      modelVersion: 1,
      previousModel: null,
      wave: i < WAVES[0]! ? 0 : i < WAVES[0]! + WAVES[1]! ? 1 : 2,
    }));
    // a finished rollout: the service's tick leaves it alone
    store.create({ id: ID, name: 'paged', spec: RolloutCreateSchema.parse({ models: [{ modelId: 'cnn-generic-cpu', version: 1, profileId: 'generic-cpu' }] }), waveSizes: WAVES }, devices, 1000);
    fleet.cp.ctx.db.transaction(() => {
      devices.forEach((d, i) => store.updateDevice(ID, d.deviceId, { state: STATES[i % STATES.length], ...(i % 4 ? { p50Ms: 1 + ((i * 31) % 97) / 10 } : {}) }, 1001));
      for (let i = 0; i < 300; i++) store.event(ID, 'device-state', devices[i]!.deviceId, `event ${i}`, 1002 + i);
    })();
    store.setState(ID, 'succeeded', 2000);
    const r = await fleet.api(`/reports/rollouts/${ID}`);
    assert.equal(r.status, 200, r.text);
    report = r.body;
    assert.equal(report.devices.length, N);
  });
  after(async () => {
    await fleet?.stop();
  });

  test('the pages together are the report\'s devices in its order, each once; waves, counts and the summary are the whole rollout', async () => {
    const first = await fleet.api(`/rollouts/${ID}`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.devices.length, 500, 'the default page');
    assert.equal(first.body.page.limit, 500);
    assert.equal(first.body.events.length, 200, 'the default number of events');
    assert.equal(first.body.events[0].detail, 'event 299', 'newest first');
    assert.equal(first.body.summary.devices, N);
    assert.deepEqual(first.body.waves, report.waves, 'waves counted in SQL = waves counted from every row');
    const byState: Record<string, number> = {};
    for (const d of report.devices) byState[d.state] = (byState[d.state] ?? 0) + 1;
    assert.deepEqual(first.body.deviceStates, byState);
    assert.equal(first.body.page.matching, N);

    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const r = await fleet.api(`/rollouts/${ID}?limit=300${next ? `&after=${encodeURIComponent(next)}` : ''}&events=0`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.events.length, 0);
      seen.push(...r.body.devices.map((d: { deviceId: string }) => d.deviceId));
      next = r.body.page.next;
      pages++;
    } while (next);
    assert.equal(pages, Math.ceil(N / 300));
    assert.deepEqual(seen, report.devices.map((d) => d.deviceId));
  });

  test('?state and ?wave select; matching counts every page of the selection', async () => {
    const failed2 = report.devices.filter((d) => d.state === 'failed' && d.wave === 2);
    const r = await fleet.api(`/rollouts/${ID}?state=failed&wave=2&limit=40`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.page.matching, failed2.length);
    assert.deepEqual(r.body.devices.map((d: { deviceId: string }) => d.deviceId), failed2.slice(0, 40).map((d) => d.deviceId));
    const rest = await fleet.api(`/rollouts/${ID}?state=failed&wave=2&limit=1000&after=${encodeURIComponent(r.body.page.next)}`);
    assert.deepEqual(rest.body.devices.map((d: { deviceId: string }) => d.deviceId), failed2.slice(40).map((d) => d.deviceId));
    assert.equal(rest.body.page.next, null);
    const none = await fleet.api(`/rollouts/${ID}?state=verifying`);
    assert.deepEqual([none.body.devices.length, none.body.page.matching, none.body.page.next], [0, 0, null]);
  });

  test('a bad page query is a 400 naming the parameter, not a page', async () => {
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=5001', 'limit'],
      ['limit=0x10', 'limit'],
      ['after=12', 'after'],
      ['after=1:..%2Fetc', 'after'],
      ['after=-1:pg-0001', 'after'],
      ['after=1:edgefleet-cp', 'after'],
      ['state=gone', 'state'],
      ['wave=-1', 'wave'],
      ['events=1001', 'events'],
    ] as const) {
      const r = await fleet.api(`/rollouts/${ID}?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.ok(JSON.stringify(r.body).includes(field), `${q}: names ${field}: ${r.text}`);
    }
    assert.equal((await fleet.api('/rollouts/ro-none?limit=1')).status, 404);
  });

  const skipBrowser = browserMissing();
  test('the rollout page shows one page of devices, moves through them, and filters by state', { skip: skipBrowser ?? false }, async () => {
    const { browser, page, errors } = await openDashboard(fleet.cp.httpUrl, fleet.token, `?poll=60000&devicePage=500#/rollouts/${ID}`);
    try {
      const rows = () => page.locator('#rollout-devices tbody tr').count();
      // a selector wait: the page's CSP forbids the eval a string predicate needs
      const range = (want: string) => page.waitForSelector(`#device-range:text-is("${want}")`);
      await range(`1–500 of ${N}`);
      assert.equal(await rows(), 500);
      assert.equal(await page.locator('.cells .cell').count(), 500, 'the grid shows the page');
      assert.equal(await page.locator('#waves tbody tr').count(), WAVES.length);
      assert.equal(await page.locator('#devices-prev').count(), 0);
      await page.click('#devices-next');
      await range(`501–1000 of ${N}`);
      assert.equal(await page.textContent('#rollout-devices tbody tr:first-child td:first-child'), report.devices[500]!.deviceId);
      await page.click('#devices-next');
      await range(`1001–${N} of ${N}`);
      assert.equal(await rows(), N - 1000);
      assert.equal(await page.locator('#devices-next').count(), 0, 'no next page after the last');
      await page.click('#devices-prev');
      await range(`501–1000 of ${N}`);
      const failed = report.devices.filter((d) => d.state === 'failed');
      await page.click('#device-filter button[data-state="failed"]');
      await range(`1–${failed.length} of ${failed.length} failed`);
      assert.equal(await rows(), failed.length);
      await screenshot(page, 'rollout-paged-failed');
      await page.click('#device-filter button[data-state=""]');
      await range(`1–500 of ${N}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
