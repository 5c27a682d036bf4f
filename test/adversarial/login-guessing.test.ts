import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { connectRaw, enrollRaw } from '../helpers/raw-device.ts';

const failures = (text: string, reason: string): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith('edgefleet_broker_auth_failures_total{') && l.includes(`reason="${reason}"`))
    .reduce((s, l) => s + Number(l.split(' ').pop()), 0);

async function attempt(url: string, opts: { clientId: string; username: string; password: string }): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  try {
    const c = await connectRaw(url, opts);
    c.end(true);
    return { ok: true, ms: performance.now() - t0 };
  } catch {
    return { ok: false, ms: performance.now() - t0 };
  }
}

/**
 * Issue 8 item 11: 2,000 wrong device passwords at ~250 tries/s were all answered at full speed on
 * both brokers. Now repeated failures are braked per client id, username and source address: the
 * embedded broker holds each further attempt for a doubling delay (one attempt per slot, so parallel
 * guesses are served one at a time); Mosquitto's plugin refuses attempts between slots unchecked.
 * Both count the failures; a correct login still gets in.
 */
for (const kind of BROKER_KINDS) {
  describe(`brake on guessing on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let password = '';

    before(async () => {
      fleet = await startTestFleet(kind);
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 } })).body.token;
      password = (await enrollRaw(fleet.cp.brokerUrl, token, 'target')).password;
    });
    after(async () => fleet?.stop());

    test('repeated wrong passwords are slowed or refused unchecked, counted, and the right one still gets in', async () => {
      const wrong = { clientId: 'target', username: 'target', password: 'wrong-wrong-wrong-wrong-wrong-wrong' };
      const times: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await attempt(fleet.cp.brokerUrl, wrong);
        assert.equal(r.ok, false);
        times.push(r.ms);
      }
      if (kind === 'embedded') {
        // free: 3 failures; then each attempt waits for its slot: 100, 200, 400, 800, 1600, 2000 ms...
        assert.ok(times[2]! < 1000, `early failures are answered at once (${times[2]!.toFixed(0)} ms)`);
        assert.ok(times[9]! >= 1200, `the 10th failure was held >= 1.2 s (took ${times[9]!.toFixed(0)} ms)`);
        assert.ok(times.slice(4).reduce((a, b) => a + b, 0) >= 4000, 'the attempts after the free ones took >= 4 s together');
      }
      // on Mosquitto the failures within a slot are refused without a password check
      await waitFor('failures counted', async () => {
        const m = (await fleet.api('/metrics')).text;
        return failures(m, 'bad-credentials') + failures(m, 'braked') >= 12 && (kind === 'embedded' || failures(m, 'braked') >= 3);
      });
      // the right password gets in, at the latest once the current slot opens
      const deadline = Date.now() + 10_000;
      let ok = false;
      while (!ok && Date.now() < deadline) {
        ok = (await attempt(fleet.cp.brokerUrl, { clientId: 'target', username: 'target', password })).ok;
        if (!ok) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(ok, 'the correct login got in within 10 s');
      // a success clears the client id's count: the next login is not held
      const again = await attempt(fleet.cp.brokerUrl, { clientId: 'target', username: 'target', password });
      assert.ok(again.ok);
    });

    test('a parallel burst of guesses from one address is served one slot at a time', async () => {
      // let the plugin's counters of the previous test arrive first
      await new Promise((r) => setTimeout(r, kind === 'mosquitto' ? 2500 : 0));
      const before = failures((await fleet.api('/metrics')).text, 'braked');
      const t0 = performance.now();
      const burst = await Promise.all(
        Array.from({ length: 60 }, (_, i) => attempt(fleet.cp.brokerUrl, { clientId: `guess-${i}`, username: `guess-${i}`, password: 'wrong-wrong-wrong-wrong-wrong-wrong' })),
      );
      const wall = performance.now() - t0;
      assert.ok(burst.every((r) => !r.ok));
      // 30 free per address, then one attempt per slot (100 ms doubling to 2 s): on the embedded broker the held
      // attempts make the burst slow and those whose slot lies beyond 8 s are refused at once; Mosquitto refuses
      // the attempts between slots unchecked. Either way most of the burst never has its password checked.
      if (kind === 'embedded') assert.ok(wall >= 1500, `60 parallel guesses took ${wall.toFixed(0)} ms (>= 1.5 s expected)`);
      await waitFor('braked refusals counted', async () => failures((await fleet.api('/metrics')).text, 'braked') - before >= 15);
    });
  });
}
