import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentHandle } from '../agent/index.ts';
import { startSwarm } from './helpers/agent-swarm.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';

const AGENTS = 200;
const HEARTBEAT_MS = 1000;
/** Issue 10's bound: all back online within 60 s of the HTTP port answering. */
const RESTART_BOUND_MS = 60_000;
/**
 * Longer than the agents' reconnect spread after a restart (backoff windows 2, 4, 8 s while the new
 * process starts), as production's 90 s is: a shorter one would let the sweep call silence that the
 * restart itself caused "missed heartbeats".
 */
const PRESENCE_TIMEOUT_MS = 15_000;

const online = async (fleet: TestFleet): Promise<number> => (await fleet.api('/devices?status=online&limit=1')).body.total as number;
const acceptedHeartbeats = (fleet: TestFleet): number => fleet.cp.ctx.metrics.get('edgefleet_mqtt_messages_accepted_total', { channel: 'heartbeat' });

for (const kind of BROKER_KINDS) {
  describe(`${AGENTS} agents on the ${kind} broker: batched writes, a restart without a stampede, mass kill`, () => {
    let fleet: TestFleet;
    let token: string;
    let agents: AgentHandle[] = [];
    const stateRoot = mkdtempSync(join(tmpdir(), `ef-swarm-${kind}-`));
    const swarm = (): Promise<AgentHandle[]> =>
      startSwarm({ brokerUrl: fleet.cp.brokerUrl, token, count: AGENTS, stateRoot, idPrefix: 'rs', heartbeatIntervalMs: HEARTBEAT_MS });

    before(async () => {
      fleet = await startTestFleet(kind, { presenceTimeoutMs: PRESENCE_TIMEOUT_MS, presenceSweepMs: 250 });
      token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'swarm', maxUses: AGENTS } })).body.token;
    });
    after(async () => {
      await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
      await fleet?.stop();
    });

    test('every heartbeat sent is accepted, and they are written many to a transaction', async () => {
      agents = await swarm();
      await waitFor(`${AGENTS} online`, async () => (await online(fleet)) === AGENTS, 120_000, 200);
      const batches0 = fleet.cp.ctx.metrics.get('edgefleet_presence_batches_total');
      const tx0 = fleet.cp.ctx.devices.batchTransactions;
      const hb0 = acceptedHeartbeats(fleet);
      await waitFor('three rounds of heartbeats', () => acceptedHeartbeats(fleet) >= hb0 + 3 * AGENTS, 30_000);
      const heartbeats = acceptedHeartbeats(fleet) - hb0;
      const batches = fleet.cp.ctx.metrics.get('edgefleet_presence_batches_total') - batches0;
      assert.equal(fleet.cp.ctx.devices.batchTransactions - tx0, batches, 'each batch is one SQLite transaction');
      // one write per heartbeat would be `heartbeats` transactions; per tick it is a handful per second
      assert.ok(batches * 4 <= heartbeats, `${heartbeats} heartbeats in ${batches} transactions`);
      console.log(`# ${kind}: ${heartbeats} heartbeats written in ${batches} transactions`);

      // graceful stop: nothing in flight is lost, so the control plane accepted exactly what the agents sent
      await Promise.all(agents.map((a) => a.stop()));
      const sent = agents.reduce((n, a) => n + a.counters.heartbeatsSent, 0);
      await waitFor('all heartbeats accepted', () => acceptedHeartbeats(fleet) >= sent, 20_000);
      assert.equal(acceptedHeartbeats(fleet), sent);
      await waitFor('all offline after a graceful stop', async () => (await online(fleet)) === 0, 30_000);
    });

    test('a control-plane restart leaves no offline record that was not earned; all back within the bound', async () => {
      agents = await swarm(); // same identities: no enrollment
      await waitFor(`${AGENTS} online again`, async () => (await online(fleet)) === AGENTS, 120_000, 200);
      const reconnectDelays: number[] = [];
      for (const a of agents) a.events.on('reconnect-scheduled', ({ delayMs }) => reconnectDelays.push(delayMs));
      const since = Date.now();
      const connectsBefore = agents.reduce((n, a) => n + a.counters.connects, 0);

      await fleet.restartControlPlane();
      const httpUp = Date.now();
      let lowest = AGENTS;
      await waitFor('all online after the restart', async () => {
        const n = await online(fleet);
        lowest = Math.min(lowest, n);
        // on the embedded broker the agents reconnect: wait for that too, not only the records
        return n === AGENTS && (kind === 'mosquitto' || agents.every((a) => a.connected));
      }, RESTART_BOUND_MS, 100);
      const recoveryMs = Date.now() - httpUp;
      console.log(`# ${kind}: all ${AGENTS} online ${recoveryMs} ms after the HTTP port answered (fewest online seen: ${lowest})`);
      assert.equal(lowest, AGENTS, 'the fleet report never showed a device going offline');

      if (kind === 'embedded') {
        // the broker lives in the control plane: the agents did reconnect, spread by jittered backoff
        assert.ok(agents.reduce((n, a) => n + a.counters.connects, 0) >= connectsBefore + AGENTS);
        const sorted = [...reconnectDelays].sort((a, b) => a - b);
        assert.equal(sorted.length >= AGENTS, true);
        const spreadMs = sorted[Math.floor(sorted.length * 0.9)]! - sorted[Math.floor(sorted.length * 0.1)]!;
        assert.ok(spreadMs > 1000, `first reconnects spread over ${spreadMs} ms (p10..p90)`);
      }
      // past one presence timeout of listening plus sweeps: the sweep did not mark anyone offline for the silence of the restart
      await new Promise((r) => setTimeout(r, Math.max(0, httpUp + PRESENCE_TIMEOUT_MS + 1500 - Date.now())));
      assert.deepEqual(fleet.cp.ctx.devices.offlineRecordsSince(since), [], 'no device recorded offline');
      assert.equal(await online(fleet), AGENTS);
    });

    test('the wills of agents killed at once are all processed', async () => {
      const killed = agents.slice(0, AGENTS / 2);
      const t0 = Date.now();
      await Promise.all(killed.map((a) => a.stop({ graceful: false })));
      await waitFor('killed agents offline', async () => (await online(fleet)) === AGENTS - killed.length, 30_000, 50);
      console.log(`# ${kind}: ${killed.length} wills processed in ${Date.now() - t0} ms`);
      const records = fleet.cp.ctx.devices.offlineRecordsSince(t0);
      assert.deepEqual(new Set(records.map((r) => r.deviceId)), new Set(killed.map((a) => a.deviceId)));
      assert.ok(records.every((r) => r.reason === 'will-or-goodbye'), 'offline through the will, not the heartbeat timeout');
    });
  });
}
