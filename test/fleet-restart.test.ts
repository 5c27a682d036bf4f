import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentHandle } from '../agent/index.ts';
import { IDENTITY_FILE } from '../agent/identity.ts';
import { StatusSchema, PROTOCOL_VERSION } from '../shared/messages.ts';
import { deviceTopic } from '../shared/topics.ts';
import { connectRaw } from './helpers/raw-device.ts';
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

    // embedded only: on Mosquitto the agents keep their connections through a control-plane restart
    if (kind === 'embedded') test(
      'a reconnect that breaks before its CONNACK during a restart: its will is held, dropped when the device comes back, written within the hold when it does not',
      async () => {
        // two of the agents still up after the mass kill: A will come back, B will not
        const [ia, ib] = [AGENTS / 2, AGENTS / 2 + 1];
        const [a, b] = [agents[ia]!, agents[ib]!];
        const password = (i: number): string => (JSON.parse(readFileSync(join(stateRoot, `a${i}`, IDENTITY_FILE), 'utf8')) as { password: string }).password;
        const held = (outcome: string): number => fleet.cp.ctx.metrics.get('edgefleet_presence_held_wills_total', { outcome });
        const since = Date.now();
        // while the control plane (and its broker) is down, A and B stop trying: nobody hears of it
        await fleet.restartControlPlane(async () => {
          await Promise.all([a.stop({ graceful: false }), b.stop({ graceful: false })]);
        });
        const held0 = held('held');
        // each makes one reconnect that the broker registers (will included) but that dies before it says
        // online, as an agent that gave up waiting for a late CONNACK does: the socket closes, the will fires
        const willAt = Date.now();
        for (const [i, dev] of [[ia, a], [ib, b]] as const) {
          const will = { topic: deviceTopic(dev.deviceId, 'status'), payload: Buffer.from(JSON.stringify(StatusSchema.parse({ v: PROTOCOL_VERSION, state: 'offline', ts: Date.now() }))), qos: 1 as const, retain: true };
          const broken = await connectRaw(fleet.cp.brokerUrl, { clientId: dev.deviceId, username: dev.deviceId, password: password(i), will } as never);
          broken.stream.destroy();
        }
        await waitFor('both wills held', () => held('held') >= held0 + 2, 20_000, 20);
        for (const dev of [a, b]) assert.equal((await fleet.api(`/devices/${dev.deviceId}`)).body.status, 'online', `${dev.deviceId} not offline while its will is held`);
        // A's next connection comes online within the hold
        const [a2] = await startSwarm({ brokerUrl: fleet.cp.brokerUrl, token, count: 1, from: ia, stateRoot, idPrefix: 'rs', heartbeatIntervalMs: HEARTBEAT_MS });
        agents[ia] = a2!;
        await a2!.waitFor('connected', 30_000);
        const bOffline = await waitFor('B recorded offline by its held will', () => fleet.cp.ctx.devices.offlineRecordsSince(since).find((r) => r.deviceId === b.deviceId), 60_000, 50);
        const writtenAfterMs = Date.now() - willAt;
        assert.equal(bOffline.reason, 'will-held');
        const holdMs = Math.min(45_000, PRESENCE_TIMEOUT_MS / 2);
        assert.ok(writtenAfterMs >= holdMs - 100 && writtenAfterMs < holdMs + 10_000, `B written ${writtenAfterMs} ms after its will (hold ${holdMs} ms)`);
        await waitFor("A's held will dropped", () => held('dropped') >= 1, 30_000, 50);
        assert.deepEqual(fleet.cp.ctx.devices.offlineRecordsSince(since).filter((r) => r.deviceId === a.deviceId), [], 'A never recorded offline');
        assert.equal((await fleet.api(`/devices/${a.deviceId}`)).body.status, 'online');
        console.log(`# ${kind}: a broken reconnect's will held; the device that came back never showed offline, the one that did not was written ${writtenAfterMs} ms after its will`);
      },
    );

    // embedded only: Mosquitto applies MQTT's takeover rule itself; this guard is the embedded broker's
    if (kind === 'embedded') test(
      "a CONNECT older than the device's live connection (one its agent gave up on) does not take that connection over",
      async () => {
        const i = AGENTS / 2 + 2;
        const dev = agents[i]!;
        assert.ok(dev.connected);
        const password = (JSON.parse(readFileSync(join(stateRoot, `a${i}`, IDENTITY_FILE), 'utf8')) as { password: string }).password;
        let dropped = false;
        dev.events.once('disconnected', () => (dropped = true));
        const since = Date.now();
        const refused0 = fleet.cp.ctx.metrics.get('edgefleet_broker_stale_connects_refused_total');
        // the CONNECT of an attempt from a minute ago, read by the broker only now
        const will = { topic: deviceTopic(dev.deviceId, 'status'), payload: Buffer.from(JSON.stringify(StatusSchema.parse({ v: PROTOCOL_VERSION, state: 'offline', ts: Date.now() - 60_000 }))), qos: 1 as const, retain: true };
        await assert.rejects(connectRaw(fleet.cp.brokerUrl, { clientId: dev.deviceId, username: dev.deviceId, password, will } as never), /unavailable|3/i);
        assert.equal(fleet.cp.ctx.metrics.get('edgefleet_broker_stale_connects_refused_total'), refused0 + 1);
        // a heartbeat round trip later the agent is still on its connection, and nothing was recorded
        const hb = dev.counters.heartbeatsSent;
        await waitFor('a heartbeat on the live connection', () => dev.counters.heartbeatsSent > hb, 10_000, 20);
        assert.equal(dropped, false, 'the live connection was not taken over');
        assert.ok(dev.connected);
        assert.deepEqual(fleet.cp.ctx.devices.offlineRecordsSince(since), []);
      },
    );
  });
}
