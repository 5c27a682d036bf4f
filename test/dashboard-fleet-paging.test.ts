// The fleet page at more devices than one page: it used to fetch the first 1,000 devices and filter them in the
// browser, so with a larger fleet a status, profile or search filter silently missed every device past the first
// 1,000. The API now filters (?status, ?profile, ?label, ?q for part of an id) and the page moves through the
// matches a page at a time. A real control plane over SQLite; 250 device rows written through its device store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createUiExtension } from '../control-plane/ui/index.ts';
import { browserMissing, openDashboard, screenshot } from './helpers/browser.ts';
import { startTestFleet, type TestFleet } from './helpers/control-plane.ts';

const N = 250;
const id = (i: number) => `fp-${i % 2 ? 'odd' : 'even'}_${String(i).padStart(3, '0')}`;

describe('device list filters in SQL; the fleet page pages through them', () => {
  let fleet: TestFleet;

  before(async () => {
    fleet = await startTestFleet('embedded', { extensions: [createUiExtension()] });
    const devices = fleet.cp.ctx.devices;
    for (let i = 0; i < N; i++) {
      devices.createEnrolled(id(i), 'hash', 'tok', 1);
      if (i % 3 === 0) devices.setStatus(id(i), 'online', 2, 'test', 2);
      if (i % 50 === 7) devices.update(id(i), { labels: { site: 'berlin' } });
    }
  });
  after(async () => {
    await fleet?.stop();
  });

  test('?q matches part of the id (case aside, % and _ as themselves) with the right total; it combines with the other filters', async () => {
    const all = Array.from({ length: N }, (_, i) => id(i));
    const q = async (query: string) => (await fleet.api(`/devices?${query}`)).body as { items: { id: string }[]; total: number };
    const odd = await q('q=ODD&limit=1000');
    assert.deepEqual(odd.items.map((d) => d.id), all.filter((x) => x.includes('odd')).sort());
    assert.equal(odd.total, N / 2);
    assert.equal((await q('q=_1&limit=1')).total, all.filter((x) => x.includes('_1')).length, 'the total counts every match, not the page');
    assert.equal((await q(`q=${encodeURIComponent('%')}`)).total, 0, '% is a character, not a wildcard');
    assert.equal((await q(`q=${encodeURIComponent('d_')}`)).total, N / 2, '_ is a character: only "odd_" has d_ ("even_" would match a wildcard d?)');
    const onlineOdd = await q('q=odd&status=online&limit=1000');
    assert.deepEqual(onlineOdd.items.map((d) => d.id), all.filter((x, i) => x.includes('odd') && i % 3 === 0).sort());
    assert.equal((await fleet.api('/devices?q=')).status, 400, 'an empty search is a mistake, not "everything"');
    assert.equal((await fleet.api(`/devices?q=${'x'.repeat(65)}`)).status, 400);
  });

  const skipBrowser = browserMissing();
  test('the fleet page shows one page, moves through the fleet, and filters beyond the first page', { skip: skipBrowser ?? false }, async () => {
    const { browser, page, errors } = await openDashboard(fleet.cp.httpUrl, fleet.token, `?poll=60000&fleetPage=100#/fleet`);
    try {
      // selector waits: the page's CSP forbids the eval a string predicate needs
      const count = (want: string) => page.waitForSelector(`[data-count]:text-is("${want}")`);
      const rows = () => page.locator('#devices tbody tr').count();
      await count(`1–100 of ${N}`);
      assert.equal(await rows(), 100);
      await page.click('#fleet-next');
      await count(`101–200 of ${N}`);
      await page.click('#fleet-next');
      await count(`201–${N} of ${N}`);
      assert.equal(await rows(), N - 200);
      assert.equal(await page.locator('#fleet-next').count(), 0);
      // a filter starts again at its first page, and finds devices past the first page of the fleet
      await page.selectOption('#f-status', 'online');
      const online = (await fleet.api('/devices?status=online&limit=1000')).body;
      await count(`1–${Math.min(100, online.total)} of ${online.total}`);
      assert.ok(online.total > 0 && online.total < N);
      await page.selectOption('#f-status', '');
      await page.fill('#f-q', '_24');
      await page.press('#f-q', 'Enter');
      await count('1–10 of 10');
      assert.equal(await page.locator('[data-device="fp-even_248"]').count(), 1, 'a device past the first 100');
      await page.fill('#f-q', 'site=berlin');
      await page.press('#f-q', 'Enter');
      await count('1–5 of 5');
      assert.equal(await page.locator('[data-device="fp-odd_207"]').count(), 1);
      await screenshot(page, 'fleet-paged-label');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
