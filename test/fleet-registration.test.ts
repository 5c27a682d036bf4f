import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw } from './helpers/raw-device.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';
import { deviceTopic } from '../shared/topics.ts';

const AGENTS = 50;
const AGENT_BIN = join(import.meta.dirname, '..', 'bin', 'edgefleet-agent.mjs');

function spawnAgent(brokerUrl: string, stateDir: string, token: string, factsFile: string): ChildProcess {
  return spawn(process.execPath, [AGENT_BIN, 'run', '--broker-url', brokerUrl, '--state-dir', stateDir, '--enrollment-token', token, '--facts', factsFile, '--heartbeat-seconds', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

for (const kind of BROKER_KINDS) {
  describe(`fleet registration on the ${kind} broker`, () => {
    let fleet: TestFleet;
    let token: string;
    const agents: AgentHandle[] = [];
    const procs: ChildProcess[] = [];

    before(async () => {
      fleet = await startTestFleet(kind, { presenceTimeoutMs: 4000, presenceSweepMs: 250 });
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'fleet', maxUses: 200 } });
      token = t.body.token;
    });
    after(async () => {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
      await fleet?.stop();
    });

    test(`${AGENTS} simulated agents across all five profiles register and appear with the right profiles`, async () => {
      const started = performance.now();
      const stateRoot = mkdtempSync(join(tmpdir(), `ef-agents-${kind}-`));
      const handles = await Promise.all(
        Array.from({ length: AGENTS }, (_, i) =>
          startAgent({
            brokerUrl: fleet.cp.brokerUrl,
            stateDir: join(stateRoot, `a${i}`),
            enrollmentToken: token,
            deviceId: `sim-${SIMULATED[i % SIMULATED.length]!.kind}-${String(i).padStart(2, '0')}`,
            facts: SIMULATED[i % SIMULATED.length]!.facts,
            heartbeatIntervalMs: 2000,
          }),
        ),
      );
      agents.push(...handles);
      // registered = online AND its birth recorded (presence and births are written in batches, a tick apart at most)
      await waitFor(`${AGENTS} devices online with their births recorded`, async () => {
        const r = await fleet.api('/devices?status=online&limit=1000');
        return (r.body.items as { births: number }[]).filter((d) => d.births >= 1).length === AGENTS;
      }, 60_000, 100);
      const seconds = (performance.now() - started) / 1000;
      console.log(`# ${kind}: ${AGENTS} agents enrolled and registered in ${seconds.toFixed(2)} s`);

      const all = await fleet.api('/devices?limit=1000');
      assert.equal(all.body.total, AGENTS);
      for (const d of all.body.items as { id: string; profileId: string; profileReason: string }[]) {
        const sim = SIMULATED.find((s) => d.id.startsWith(`sim-${s.kind}-`))!;
        assert.equal(d.profileId, sim.expectProfile, `${d.id} matched ${d.profileId}`);
        assert.notEqual(d.profileReason, 'agent-hint');
      }
      for (const sim of SIMULATED) {
        const r = await fleet.api(`/devices?profile=${sim.expectProfile}&limit=5&offset=5`);
        assert.equal(r.body.total, AGENTS / SIMULATED.length);
        assert.equal(r.body.items.length, 5, 'second page');
      }
      const report = await fleet.api('/reports/fleet');
      assert.equal(report.body.devices, AGENTS);
      assert.equal(report.body.byStatus.online, AGENTS);
      for (const p of report.body.byProfile as { profileId: string; devices: number; online: number }[]) {
        assert.equal(p.devices, AGENTS / SIMULATED.length, p.profileId);
      }
      const tokens = await fleet.api('/enrollment-tokens');
      assert.equal(tokens.body.items[0].uses, AGENTS);
    });

    test('an operator rebirth makes the agent announce itself again', async () => {
      const id = agents[4]!.deviceId;
      const before = (await fleet.api(`/devices/${id}`)).body.births;
      assert.equal((await fleet.api(`/devices/${id}/rebirth`, { method: 'POST' })).status, 202);
      await waitFor('a second birth', async () => (await fleet.api(`/devices/${id}`)).body.births > before);
    });

    test('heartbeats arrive and reach the device record', async () => {
      const id = agents[0]!.deviceId;
      const d = await waitFor('a heartbeat recorded', async () => (await fleet.api(`/devices/${id}`)).body.heartbeat);
      assert.ok(d.memTotalBytes > 0);
      assert.equal(typeof d.uptimeSeconds, 'number');
    });

    test('labels, label filters and an operator profile override', async () => {
      const id = agents[1]!.deviceId;
      const p = await fleet.api(`/devices/${id}`, { method: 'PATCH', json: { labels: { site: 'berlin', tier: 'canary' }, profileOverride: 'generic-cpu' } });
      assert.equal(p.status, 200);
      assert.equal(p.body.profileId, 'generic-cpu');
      assert.equal(p.body.profileReason, 'override');
      const filtered = await fleet.api('/devices?label=site=berlin,tier=canary');
      assert.deepEqual(filtered.body.items.map((d: { id: string }) => d.id), [id]);
      // a rebirth keeps the override
      const births = p.body.births as number;
      await agents[1]!.publishBirth();
      await waitFor('the rebirth recorded', async () => (await fleet.api(`/devices/${id}`)).body.births > births);
      assert.equal((await fleet.api(`/devices/${id}`)).body.profileId, 'generic-cpu');
      const cleared = await fleet.api(`/devices/${id}`, { method: 'PATCH', json: { labels: { tier: null }, profileOverride: null } });
      assert.deepEqual(cleared.body.labels, { site: 'berlin' });
      assert.notEqual(cleared.body.profileId, 'generic-cpu');
    });

    test('a killed agent process goes offline through its will; restarted, it keeps its identity', async () => {
      const stateDir = mkdtempSync(join(tmpdir(), `ef-proc-${kind}-`));
      const factsFile = join(stateDir, '..', `facts-${kind}-${Date.now()}.json`);
      writeFileSync(factsFile, JSON.stringify({ platform: 'linux', arch: 'arm64', cpu: { flags: ['asimd', 'asimddp'] } }));
      // waits are for the events (online, will, second birth), bounded generously: a tsx agent process starts slowly on a loaded CI machine
      const first = spawnAgent(fleet.cp.brokerUrl, stateDir, token, factsFile);
      procs.push(first);
      // online and its birth recorded: the control plane writes the retained online and the birth a presence tick
      // apart, so a device can be listed online a moment before it has a profile (CI caught that once)
      const dev = await waitFor('process agent online, its birth recorded', async () => {
        const r = await fleet.api(`/devices?status=online&limit=1000`);
        return (r.body.items as { id: string; profileId: string | null; births: number }[]).find((d) => !d.id.startsWith('sim-') && d.births >= 1);
      }, 120_000);
      assert.equal(dev.profileId, 'armv82-dotprod', 'facts file override applied');
      const usesBefore = (await fleet.api('/enrollment-tokens')).body.items[0].uses;
      first.kill('SIGKILL');
      const offline = await waitFor('offline via will', async () => {
        const r = await fleet.api(`/devices/${dev.id}`);
        return r.body.status === 'offline' ? r.body : null;
      }, 120_000);
      assert.equal(offline.statusHistory[0].reason, 'will-or-goodbye');

      const second = spawnAgent(fleet.cp.brokerUrl, stateDir, token, factsFile);
      procs.push(second);
      const back = await waitFor('same device back online', async () => {
        const r = await fleet.api(`/devices/${dev.id}`);
        return r.body.status === 'online' && r.body.births >= 2 ? r.body : null;
      }, 120_000);
      assert.equal(back.id, dev.id);
      assert.equal((await fleet.api('/enrollment-tokens')).body.items[0].uses, usesBefore, 'no second enrollment');
      assert.equal((await fleet.api('/devices?limit=1')).body.total, AGENTS + 1, 'no duplicate device');
      second.kill('SIGTERM');
      await waitFor('graceful offline', async () => (await fleet.api(`/devices/${dev.id}`)).body.status === 'offline', 120_000);
    });

    test('state survives a control-plane restart, and agents come back', async () => {
      const id = agents[2]!.deviceId;
      await fleet.restartControlPlane();
      assert.equal((await fleet.api(`/devices/${id}`)).body.status, 'online');
      await waitFor('all simulated agents online after the restart', async () => {
        const r = await fleet.api('/devices?status=online&limit=1');
        return r.body.total >= AGENTS;
      }, 30_000);
      assert.equal((await fleet.api('/devices?limit=1')).body.total, AGENTS + 1);
    });

    test('missed heartbeats mark a silent device offline', async () => {
      // a device that stays connected (no will) but stops talking
      const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
      const { password } = await enrollRaw(fleet.cp.brokerUrl, t.body.token, 'quiet-one');
      const quiet = await connectRaw(fleet.cp.brokerUrl, { clientId: 'quiet-one', username: 'quiet-one', password });
      await quiet.publishAsync(deviceTopic('quiet-one', 'birth'), birthPayload('quiet-one'), { qos: 1 });
      await waitFor('quiet-one online', async () => (await fleet.api('/devices/quiet-one')).body?.status === 'online');
      const off = await waitFor('offline after missed heartbeats', async () => {
        const d = (await fleet.api('/devices/quiet-one')).body;
        return d.status === 'offline' ? d : null;
      }, 15_000);
      assert.equal(off.statusHistory[0].reason, 'missed-heartbeats');
      assert.ok(quiet.connected, 'the connection itself was never dropped');
      // agents heartbeating every 2 s stay online under the same 4 s timeout
      assert.ok((await fleet.api('/devices?status=online&limit=1')).body.total >= AGENTS);
      await quiet.endAsync();
    });

    test('HTTP: no token gives 401, a bad body gives 400 naming the field, unknown ids 404', async () => {
      assert.equal((await fleet.api('/devices', { auth: null })).status, 401);
      assert.equal((await fleet.api('/devices', { auth: 'wrong-token-wrong-token' })).status, 401);
      assert.equal((await fleet.api('/reports/fleet', { auth: null })).status, 401);
      assert.equal((await fleet.api('/metrics', { auth: null })).status, 401);
      assert.equal((await fleet.api('/healthz', { auth: null })).status, 200);
      const id = agents[3]!.deviceId;
      const bad = await fleet.api(`/devices/${id}`, { method: 'PATCH', json: { labels: { site: 42 } } });
      assert.equal(bad.status, 400);
      assert.match(bad.body.message, /labels\.site/);
      const unknownProfile = await fleet.api(`/devices/${id}`, { method: 'PATCH', json: { profileOverride: 'quantum-cpu' } });
      assert.equal(unknownProfile.status, 400);
      assert.match(unknownProfile.body.message, /profileOverride/);
      const notJson = await fleet.api(`/devices/${id}`, { method: 'PATCH', body: '{nope', headers: { 'content-type': 'application/json' } });
      assert.equal(notJson.status, 400);
      assert.equal((await fleet.api('/devices?status=sleepy')).status, 400);
      assert.equal((await fleet.api('/devices/no-such-device')).status, 404);
      const tok = await fleet.api('/enrollment-tokens', { method: 'POST', json: { expiresInSeconds: 5 } });
      assert.equal(tok.status, 400);
      assert.match(tok.body.message, /expiresInSeconds/);
      const metrics = (await fleet.api('/metrics')).text;
      assert.match(metrics, /edgefleet_http_bad_requests_total\{route="\/devices\/:id"\} [3-9]/, 'bad bodies are counted');
      assert.match(metrics, /edgefleet_http_unauthorized_total [1-9]/);
      assert.match(metrics, /^edgefleet_devices_by_profile\{profile="x86-64-vnni"\} 10$/m, 'device gauges read from the store');
      assert.match(metrics, /^edgefleet_devices\{status="online"\} \d+$/m);
    });
  });
}
