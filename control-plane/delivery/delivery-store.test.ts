import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrateRoom, openDatabase } from '../store/db.ts';
import { DELIVERY_MIGRATIONS } from './migrations.ts';
import { DeliveryStore } from './delivery-store.ts';

// A transfer ends (its shared topic revoked) when the last device offered it is done. The check runs at every
// device's install report, so it must not read the wave: it asks whether one open offer is left.

test('hasOpenOffer: true while any offer of the transfer is open, false once the last is closed or expired', () => {
  const db = openDatabase(':memory:');
  migrateRoom(db, 'delivery', DELIVERY_MIGRATIONS);
  db.pragma('foreign_keys = OFF');
  const s = new DeliveryStore(db);
  assert.equal(s.hasOpenOffer('t1'), false, 'never offered');
  for (const d of ['a', 'b', 'c']) s.offer(d, 't1', `dl-${d}`, 1);
  s.offer('x', 't2', 'dl-x', 1, 50);
  assert.equal(s.hasOpenOffer('t1'), true);
  assert.deepEqual(s.closeOffers('a', 'dl-a', 2), ['t1']);
  assert.deepEqual(s.closeOffers('b', 'dl-b', 2), ['t1']);
  assert.equal(s.hasOpenOffer('t1'), true, 'c is still downloading');
  assert.deepEqual(s.openOfferDevices('t1'), ['c']);
  s.closeOffers('c', 'dl-c', 3);
  assert.equal(s.hasOpenOffer('t1'), false);
  assert.equal(s.hasOpenOffer('t2'), true, 'another transfer is not affected');
  assert.deepEqual(s.closeExpiredOffers(60), ['t2']);
  assert.equal(s.hasOpenOffer('t2'), false);
});
