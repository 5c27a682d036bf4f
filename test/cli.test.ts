import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { runCli } from '../control-plane/cli/program.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';
import { makeDeliveryTestModels } from './helpers/models.ts';
import { createStandardRooms } from '../control-plane/compose.ts';

const CLI = join(import.meta.dirname, '..', 'bin', 'edgefleet.mjs');
const HOME = mkdtempSync(join(tmpdir(), 'ef-cli-home-'));
/** The CLI's working folder: a temp one, with a stray quick-start data folder in it (see the test that says so). */
const CWD = mkdtempSync(join(tmpdir(), 'ef-cli-cwd-'));

/** The CLI in-process, with captured output and an environment that cannot see the real home folder. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env: { HOME, ...env },
    cwd: CWD,
    interrupted: () => new Promise(() => {}),
  });
  return { code, out, err };
}

/** The real executable, for exit codes as a shell sees them. */
function cliProcess(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: CWD, env: { PATH: process.env.PATH ?? '', HOME, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`edgefleet ${args.join(' ')} timed out; stderr: ${err}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

describe('edgefleet CLI against a real control plane', () => {
  let fleet: TestFleet;
  let conn: string[];
  const agents: AgentHandle[] = [];

  before(async () => {
    fleet = await startTestFleet('embedded');
    conn = ['--server', fleet.cp.httpUrl, '--token', fleet.token];
    const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { label: 'cli-test', maxUses: 10 } });
    const root = mkdtempSync(join(tmpdir(), 'ef-cli-agents-'));
    for (const [i, sim] of SIMULATED.slice(0, 3).entries()) {
      agents.push(await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: join(root, `a${i}`), enrollmentToken: t.body.token, deviceId: `cli-${sim.kind}`, facts: sim.facts, heartbeatIntervalMs: 5000 }));
    }
    await waitFor('3 devices online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === 3);
  });
  after(async () => {
    await Promise.all(agents.map((a) => a.stop({ graceful: false }).catch(() => {})));
    await fleet?.stop();
  });

  test('devices ls: --json is the API response, the table lists every device, --csv parses', async () => {
    const api = (await fleet.api('/devices?limit=1000')).body;
    const json = await cli([...conn, 'devices', 'ls', '--json']);
    assert.equal(json.code, 0, json.err);
    const got = JSON.parse(json.out);
    assert.equal(got.total, api.total);
    const strip = (ds: { id: string; status: string; profileId: string; profileReason: string; labels: object; agentVersion: string; facts: object }[]) =>
      ds.map(({ id, status, profileId, profileReason, labels, agentVersion, facts }) => ({ id, status, profileId, profileReason, labels, agentVersion, facts }));
    assert.deepEqual(strip(got.items), strip(api.items));

    const table = await cli([...conn, 'devices', 'ls']);
    assert.equal(table.code, 0);
    assert.match(table.out.split('\n')[0]!, /^ID\s+STATUS\s+PROFILE/);
    for (const d of api.items) assert.match(table.out, new RegExp(`^${d.id}\\s+online\\s+${d.profileId}`, 'm'));

    const csv = await cli([...conn, 'devices', 'ls', '--csv', '--profile', SIMULATED[0]!.expectProfile]);
    assert.equal(csv.code, 0, csv.err);
    const rows = parseCsv(csv.out);
    assert.deepEqual(rows[0]!.slice(0, 3), ['id', 'status', 'profileId']);
    assert.deepEqual(rows.slice(1).map((r) => r.slice(0, 3)), [[`cli-${SIMULATED[0]!.kind}`, 'online', SIMULATED[0]!.expectProfile]]);
    assert.ok(!Number.isNaN(Date.parse(rows[1]![6]!)), 'lastSeen is an ISO time');

    // --search: part of the id, found by the server
    const found = parseCsv((await cli([...conn, 'devices', 'ls', '--csv', '--search', SIMULATED[1]!.kind.toUpperCase()])).out);
    assert.deepEqual(found.slice(1).map((r) => r[0]), [`cli-${SIMULATED[1]!.kind}`]);
  });

  test('label and set-profile change the device; show prints it', async () => {
    const id = `cli-${SIMULATED[1]!.kind}`;
    const l = await cli([...conn, 'devices', 'label', id, 'site=berlin', 'note=a "quoted", value']);
    assert.equal(l.code, 0, l.err);
    assert.deepEqual((await fleet.api(`/devices/${id}`)).body.labels, { site: 'berlin', note: 'a "quoted", value' });
    const csv = parseCsv((await cli([...conn, 'devices', 'ls', '--csv', '--label', 'site=berlin'])).out);
    assert.equal(csv.length, 2);
    assert.equal(csv[1]![8], 'site=berlin,note=a "quoted", value', 'a field with quotes and commas survives CSV');
    assert.equal((await cli([...conn, 'devices', 'label', id, 'note-'])).code, 0);
    assert.deepEqual((await fleet.api(`/devices/${id}`)).body.labels, { site: 'berlin' });

    const p = await cli([...conn, 'devices', 'set-profile', id, 'generic-cpu']);
    assert.equal(p.code, 0, p.err);
    assert.match(p.out, /profile generic-cpu \(override\)/);
    assert.equal((await fleet.api(`/devices/${id}`)).body.profileId, 'generic-cpu');
    const show = await cli([...conn, 'devices', 'show', id]);
    assert.match(show.out, /^override:\s+generic-cpu$/m);
    assert.match(show.out, /presence history:/);
    assert.equal((await cli([...conn, 'devices', 'set-profile', id, 'auto'])).code, 0);
    assert.equal((await fleet.api(`/devices/${id}`)).body.profileId, SIMULATED[1]!.expectProfile);
  });

  test('errors: bad token exits 4, unknown id 5, a 400 prints the server message and exits 2, bad usage 2', async () => {
    const bad = await cli(['--server', fleet.cp.httpUrl, '--token', 'not-the-token-at-all', 'devices', 'ls']);
    assert.equal(bad.code, 4);
    assert.match(bad.err, /operator token was not accepted/);
    const none = await cli(['--server', fleet.cp.httpUrl, 'devices', 'ls']);
    assert.equal(none.code, 4);
    assert.match(none.err, /no operator token given/);
    const unknown = await cli([...conn, 'devices', 'show', 'no-such-device']);
    assert.equal(unknown.code, 5);
    assert.match(unknown.err, /device "no-such-device" not found/);
    const badProfile = await cli([...conn, 'devices', 'set-profile', `cli-${SIMULATED[0]!.kind}`, 'quantum-cpu']);
    assert.equal(badProfile.code, 2);
    assert.match(badProfile.err, /unknown profile "quantum-cpu"/);
    const badLabel = await cli([...conn, 'devices', 'label', `cli-${SIMULATED[0]!.kind}`, 'oops']);
    assert.equal(badLabel.code, 2);
    assert.equal((await cli([...conn, 'devices', 'frobnicate'])).code, 2);
    const help = await cli(['devices', 'ls', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /Exit codes:/);
  });

  test('the real executable: unreachable server exits 3, bad token 4, unknown id 5', async () => {
    const [down, auth, missing] = await Promise.all([
      cliProcess(['devices', 'ls'], { EDGEFLEET_SERVER: 'http://127.0.0.1:9', EDGEFLEET_TOKEN: 'x' }),
      cliProcess(['devices', 'ls'], { EDGEFLEET_SERVER: fleet.cp.httpUrl, EDGEFLEET_TOKEN: 'wrong-token-wrong-token' }),
      cliProcess(['devices', 'show', 'nope'], { EDGEFLEET_SERVER: fleet.cp.httpUrl, EDGEFLEET_TOKEN: fleet.token }),
    ]);
    assert.equal(down.code, 3, down.err);
    assert.match(down.err, /cannot reach the control plane at http:\/\/127\.0\.0\.1:9/);
    assert.equal(auth.code, 4, auth.err);
    assert.equal(missing.code, 5, missing.err);
  });

  test("a quick start's data folder in the test runner's working tree is not read; the CLI's own cwd is", async () => {
    // what `bash scripts/up.sh` leaves in the repo; a test that read it would pass or fail by what ran before it
    const stray = join(process.cwd(), '.edgefleet', 'control-plane');
    const strayToken = join(stray, 'operator-token');
    const created = !existsSync(strayToken);
    if (created) {
      mkdirSync(stray, { recursive: true });
      writeFileSync(strayToken, 'stray-token-from-a-quick-start\n');
      writeFileSync(join(stray, 'endpoints.json'), JSON.stringify({ http: 'http://127.0.0.1:9' }));
    }
    try {
      const none = await cli(['--server', fleet.cp.httpUrl, 'devices', 'ls']);
      assert.equal(none.code, 4, none.err);
      assert.match(none.err, /no operator token given/);
    } finally {
      if (created) rmSync(join(process.cwd(), '.edgefleet'), { recursive: true, force: true });
    }
    // the same layout under the CLI's cwd is found: discovery is relative to the cwd the caller passes
    const own = join(CWD, '.edgefleet', 'control-plane');
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, 'operator-token'), fleet.token + '\n');
    writeFileSync(join(own, 'endpoints.json'), JSON.stringify({ http: fleet.cp.httpUrl }));
    try {
      const found = await cli(['devices', 'ls', '--json']);
      assert.equal(found.code, 0, found.err);
      assert.equal(JSON.parse(found.out).total, 3);
    } finally {
      rmSync(join(CWD, '.edgefleet'), { recursive: true, force: true });
    }
  });

  test('server and token come from the config file, or from a control plane data folder', async () => {
    const cfg = join(HOME, 'cfg.json');
    writeFileSync(cfg, JSON.stringify({ server: fleet.cp.httpUrl, token: fleet.token }));
    const viaConfig = await cli(['devices', 'ls', '--json'], { EDGEFLEET_CONFIG: cfg });
    assert.equal(viaConfig.code, 0, viaConfig.err);
    const dataDir = join(HOME, 'cp-data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'operator-token'), fleet.token + '\n');
    writeFileSync(join(dataDir, 'endpoints.json'), JSON.stringify({ http: fleet.cp.httpUrl, broker: fleet.cp.brokerUrl }));
    const viaDataDir = await cli(['--data-dir', dataDir, 'report', 'fleet']);
    assert.equal(viaDataDir.code, 0, viaDataDir.err);
    assert.match(viaDataDir.out, /^devices: 3 {3}online: 3/);
  });

  test('profiles, tokens and the fleet report', async () => {
    const profiles = await cli([...conn, 'profiles', 'ls']);
    assert.equal(profiles.code, 0);
    for (const s of SIMULATED) assert.match(profiles.out, new RegExp(`^${s.expectProfile}\\s`, 'm'));
    assert.equal(JSON.parse((await cli([...conn, 'profiles', 'show', 'x86-64-vnni'])).out).id, 'x86-64-vnni');

    const created = await cli([...conn, 'tokens', 'create', '--label', 'lab', '--expires', '2h', '--max-uses', '3']);
    assert.equal(created.code, 0, created.err);
    const tokenId = created.out.trim().split('.')[0]!;
    assert.match(created.err, /edgefleet-agent run --broker-url mqtt:\/\//);
    const ls = parseCsv((await cli([...conn, 'tokens', 'ls', '--csv'])).out);
    assert.ok(ls.some((r) => r[0] === tokenId && r[1] === 'usable' && r[2] === '0/3'));
    assert.equal((await cli([...conn, 'tokens', 'revoke', tokenId])).code, 0);
    assert.equal((await fleet.api('/enrollment-tokens')).body.items.find((t: { id: string }) => t.id === tokenId).state, 'enrollment token revoked');
    assert.equal((await cli([...conn, 'tokens', 'create', '--expires', 'soon'])).code, 2);

    const report = await cli([...conn, 'report', 'fleet', '--csv']);
    const rows = parseCsv(report.out);
    assert.deepEqual(rows[0], ['profileId', 'devices', 'online', 'offline', 'lastSeen']);
    const api = (await fleet.api('/reports/fleet')).body;
    assert.deepEqual(rows.slice(1).map((r) => [r[0], Number(r[1])]), api.byProfile.map((p: { profileId: string; devices: number }) => [p.profileId, p.devices]));
  });

  test('areas this build may not have yet (models, rollouts, model reports) answer clearly', async () => {
    for (const [args, route] of [
      [['models', 'ls'], '/models'],
      [['rollout', 'ls'], '/rollouts'],
      [['report', 'model', 'm-1'], '/reports/models/m-1'],
    ] as const) {
      const r = await cli([...conn, ...args]);
      const status = (await fleet.api(route)).status;
      if (status === 404 && (await fleet.api(route)).body?.message?.startsWith('no route')) {
        assert.equal(r.code, 5, `${args.join(' ')}: ${r.err}`);
        assert.match(r.err, /not available in this build/);
      } else {
        assert.ok([0, 5].includes(r.code), `${args.join(' ')} exited ${r.code}: ${r.err}`);
      }
    }
  });
});

const modelsDir = mkdtempSync(join(tmpdir(), 'ef-cli-models-'));
const cliModels = makeDeliveryTestModels(modelsDir);

describe('edgefleet rollout against a real control plane with a registry', { skip: cliModels ? false : 'needs /usr/bin/python3 with torch and onnx' }, () => {
  let fleet: TestFleet;
  let conn: string[];
  let agent: AgentHandle | null = null;
  const sim = SIMULATED.find((s) => s.expectProfile === 'x86-64-vnni')!;

  before(async () => {
    const bench = { threads: 1, warmupQueries: 2, minQueries: 10, minSeconds: 0, maxSeconds: 10, throughputBatchSize: 4, profileOps: false };
    fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, rolloutBenchmark: bench, rolloutTickMs: 250, ui: false }).extensions);
    conn = ['--server', fleet.cp.httpUrl, '--token', fleet.token];
    const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
    agent = await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: mkdtempSync(join(tmpdir(), 'ef-cli-ro-agent-')), enrollmentToken: t.body.token, deviceId: 'cli-ro-x86', facts: sim.facts, heartbeatIntervalMs: 5000 });
    await waitFor('the device online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === 1);
    for (const version of [1, 2]) {
      const r = await fleet.api('/models', { method: 'POST', json: { name: 'cnn', file: cliModels!.int8, kind: 'int8', profileId: 'x86-64-vnni', centralAccuracy: 0.9, companions: { evalset: cliModels!.evalSet } } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.version, version);
    }
  });
  after(async () => {
    await agent?.stop({ graceful: false }).catch(() => {});
    await fleet?.stop();
  });

  test('rollout create: no --model is the CLI\'s own usage error, not the server\'s wording', async () => {
    const r = await cli([...conn, 'rollout', 'create']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--model is required/);
    assert.doesNotMatch(r.err, /expected array/);
    assert.equal((await fleet.api('/rollouts')).body.items.length, 0, 'nothing was sent');
  });

  test('rollout create --model X --profile P takes the newest version and names the rollout; a model for another recipe is refused with the reason', async () => {
    const r = await cli([...conn, 'rollout', 'create', '--model', 'cnn-x86-64-vnni', '--profile', 'x86-64-vnni', '--json']);
    assert.equal(r.code, 0, r.err);
    const created = JSON.parse(r.out);
    assert.deepEqual(created.summary.models, [{ modelId: 'cnn-x86-64-vnni', version: 2, profileId: 'x86-64-vnni' }]);
    assert.match(created.summary.name, /^cnn-x86-64-vnni@2 to x86-64-vnni \(\d{4}-\d\d-\d\d \d\d:\d\dZ\)$/);

    const pinned = await cli([...conn, 'rollout', 'create', '--model', 'cnn-x86-64-vnni@1', '--name', 'back to one', '--json']);
    assert.equal(pinned.code, 0, pinned.err);
    assert.deepEqual(JSON.parse(pinned.out).summary.models, [{ modelId: 'cnn-x86-64-vnni', version: 1, profileId: 'x86-64-vnni' }], 'the profile it was built for by default');
    assert.equal(JSON.parse(pinned.out).summary.name, 'back to one');

    const wrong = await cli([...conn, 'rollout', 'create', '--model', 'cnn-x86-64-vnni', '--profile', 'armv82-dotprod']);
    assert.equal(wrong.code, 2, wrong.err);
    assert.match(wrong.err, /quantized with the recipe of profile "x86-64-vnni", not "armv82-dotprod"/);
    assert.match(wrong.err, /"profiles": \["armv82-dotprod"\]/);
    const badVersion = await cli([...conn, 'rollout', 'create', '--model', 'cnn-x86-64-vnni@latest']);
    assert.equal(badVersion.code, 2);
    assert.match(badVersion.err, /positive integer/);
  });

  test('rollout ls: human headers, ISO and relative times, no epoch milliseconds', async () => {
    const r = await cli([...conn, 'rollout', 'ls']);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+STATE\s+WAVE\s+DEVICES\s+MODELS\s+CREATED\s+FINISHED$/);
    assert.equal(lines.length, 3, r.out);
    assert.ok(lines.some((l) => /^ro-\S+\s+back to one\s+\S+\s+\d+\s+1\s+cnn-x86-64-vnni@1 -> x86-64-vnni\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(\d+[smhd] ago\)/.test(l)), r.out);
    assert.doesNotMatch(r.out, /\b\d{13}\b/, 'no epoch milliseconds');
    assert.doesNotMatch(lines[0]!, /[a-z][A-Z]/, 'no camelCase headers');
  });
});

test('edgefleet up --exit-after-ready: control plane, embedded broker and a real local agent that registers', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ef-cli-up-'));
  const r = await cliProcess(['--data-dir', dataDir, 'up', '--http-port', '0', '--mqtt-port', '0', '--exit-after-ready'], {}, 90_000);
  assert.equal(r.code, 0, r.err);
  const deviceId = /with local agent (\S+)/.exec(r.out)?.[1];
  assert.ok(deviceId, r.out);
  assert.match(r.out, /dashboard {2}http:\/\/127\.0\.0\.1:\d+\/ui\//);
  assert.match(r.out, new RegExp(`token {6}${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/operator-token`));
  assert.match(r.out, new RegExp(`^${deviceId}\\s+online\\s`, 'm'), 'the fleet table shows the agent online');
  assert.ok(existsSync(join(dataDir, 'edgefleet.db')));
  assert.match(readFileSync(join(dataDir, 'operator-token'), 'utf8'), /^efo_/);
  assert.equal(readFileSync(join(dataDir, 'local-agent', 'device-id'), 'utf8').trim(), deviceId);
  // log lines go to a file in the data folder (not between the progress lines), and the output says where
  assert.match(r.out, new RegExp(`logs {7}${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/control-plane\\.log`));
  assert.ok(existsSync(join(dataDir, 'control-plane.log')));
  assert.doesNotMatch(r.err, /"level":/, 'no JSON log lines on the terminal');
});

test('edgefleet up --demo-size: only small or full, refused before anything starts', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ef-cli-up-size-'));
  const r = await cliProcess(['--data-dir', dataDir, 'up', '--demo', '--demo-size', 'huge', '--http-port', '0', '--mqtt-port', '0']);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--demo-size "huge": small or full/);
  assert.ok(!existsSync(join(dataDir, 'edgefleet.db')), 'no control plane was started');
});
