import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentHandle } from '../../agent/index.ts';
import { createDeliveryExtension } from '../../control-plane/delivery/index.ts';
import type { DeliverySource } from '../../shared/transfer.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from '../helpers/control-plane.ts';
import { SIMULATED } from '../helpers/simulated-devices.ts';

/**
 * Issue 8 item 9: an install whose chunks never arrive was retried without a deadline, and a later real deploy stayed
 * queued behind it for over five minutes. Replayed on both brokers: the control plane's frames for one transfer are
 * swallowed on the way (the device gets nothing usable), then a second, healthy deploy follows. The stalled one ends
 * as `failed` with the reason, the healthy one goes through at once, and the stalled one's partial download is gone.
 */
const work = mkdtempSync(join(tmpdir(), 'ef-unserved-'));
const fileA = join(work, 'never-served.bin');
const fileB = join(work, 'healthy.bin');
writeFileSync(fileA, randomBytes(600 * 1024));
writeFileSync(fileB, randomBytes(300 * 1024));
const QUICK_BENCH = { threads: 1, warmupQueries: 0, minQueries: 1, minSeconds: 0, maxSeconds: 2, throughputBatchSize: 1, profileOps: false };
const VNNI = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!.facts;
const source = (modelId: string, path: string): DeliverySource => ({ modelId, version: 1, profileId: 'x86-64-vnni', recipeId: 'x86-64-vnni', kind: 'int8', modelPath: path, centralAccuracy: null, companions: [] });

for (const kind of BROKER_KINDS) {
  describe(`a transfer that is never served, on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let agent: AgentHandle;
    let swallow: string | null = null;
    const { extension, service } = createDeliveryExtension({ frameFilter: (f) => (f.transferId === swallow ? Buffer.from('not a frame') : f.frame) });
    const stateDir = mkdtempSync(join(tmpdir(), `ef-unserved-agent-${kind}-`));
    const states = (deviceId: string, modelId: string): string[] =>
      service.store
        .events(deviceId)
        .filter((e) => e.modelId === modelId)
        .reverse()
        .map((e) => e.state);

    before(async () => {
      fleet = await startTestFleet(kind, { extensions: [extension] });
      const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 2 } })).body.token;
      agent = await startAgent({
        brokerUrl: fleet.cp.brokerUrl,
        stateDir,
        enrollmentToken: token,
        deviceId: `unserved-${kind}`,
        facts: VNNI,
        heartbeatIntervalMs: 5000,
        backoff: { initialMs: 200, maxMs: 1000 },
        // stall timeout far below the default (120 s) so the test is quick; the logic is the same
        delivery: { requestTimeoutMs: 400, stallTimeoutMs: 6000, trtexecPath: null },
      });
      await agent.waitFor('connected', 20_000);
      await waitFor('registered', () => fleet.cp.ctx.devices.get(agent.deviceId)?.profileId);
    });
    after(async () => {
      await agent?.stop();
      await fleet?.stop();
    });

    test('the stalled download fails with the reason and the next deploy does not wait behind it', async () => {
      const t = await service.registerTransfer(fileA);
      swallow = t.transferId;
      const started = Date.now();
      await service.deliver(agent.deviceId, source('never-served', fileA), { benchmark: QUICK_BENCH });
      await waitFor('the first download started', () => states(agent.deviceId, 'never-served').includes('downloading'), 20_000);
      // let it go quiet for more than one request timeout, as a real unserved transfer does
      await waitFor('first download stalled', () => (service.transfers.statsFor(agent.deviceId, t.transferId).requests >= 2 ? true : null), 20_000);
      await service.deliver(agent.deviceId, source('healthy', fileB), { benchmark: QUICK_BENCH });
      await waitFor(`healthy deploy installed (saw ${states(agent.deviceId, 'healthy').join(',')})`, () => states(agent.deviceId, 'healthy').includes('benchmarking'), 30_000);
      await waitFor(`stalled deploy failed (saw ${states(agent.deviceId, 'never-served').join(',')})`, () => states(agent.deviceId, 'never-served').includes('failed'), 30_000);
      const failed = service.store.events(agent.deviceId).find((e) => e.modelId === 'never-served' && e.state === 'failed')!;
      assert.match(failed.reason ?? '', /stalled|no chunk arrived/);
      assert.ok(Date.now() - started < 60_000, 'both settled within a minute, not >5 min');
      const transfers = join(stateDir, 'delivery', 'transfers');
      await waitFor('partial download removed', () => !existsSync(join(transfers, t.transferId)), 10_000);
      assert.deepEqual(readdirSync(transfers).filter((n) => n === t.transferId), []);
    });

    test('alone (no later deploy), an unserved download ends as failed at its stall timeout', async () => {
      await service.deliver(agent.deviceId, { ...source('never-served', fileA), version: 2 }, { benchmark: QUICK_BENCH });
      const started = Date.now();
      await waitFor('v2 failed', () => service.store.events(agent.deviceId).some((e) => e.modelId === 'never-served' && e.version === 2 && e.state === 'failed'), 40_000);
      const failed = service.store.events(agent.deviceId).find((e) => e.modelId === 'never-served' && e.version === 2 && e.state === 'failed')!;
      assert.match(failed.reason ?? '', /no chunk arrived for \d+ s/);
      assert.ok(Date.now() - started >= 5000, 'not before the stall timeout');
    });
  });
}
