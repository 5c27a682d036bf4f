import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, type AgentHandle } from '../agent/index.ts';
import { createStandardRooms } from '../control-plane/compose.ts';
import { startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { SIMULATED } from './helpers/simulated-devices.ts';

let fleet: TestFleet;
let agent: AgentHandle;

before(async () => {
  fleet = await startTestFleet('embedded', {}, (dataDir) => createStandardRooms({ dataDir, ui: false }).extensions);
  const t = await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 1 } });
  agent = await startAgent({ brokerUrl: fleet.cp.brokerUrl, stateDir: mkdtempSync(join(tmpdir(), 'ef-metrics-agent-')), enrollmentToken: t.body.token, deviceId: 'metrics-x86', facts: SIMULATED[0]!.facts, heartbeatIntervalMs: 500 });
  await waitFor('device online', async () => (await fleet.api('/devices?status=online&limit=1')).body.total === 1);
});
after(async () => {
  await agent?.stop({ graceful: false }).catch(() => {});
  await fleet?.stop();
});

test('/metrics through prom-client: every metric name of before, HTTP and MQTT histograms, process metrics', async () => {
  assert.equal((await fleet.api('/devices', { auth: null })).status, 401);
  assert.equal((await fleet.api('/devices/metrics-x86', { method: 'PATCH', json: { labels: 5 } })).status, 400);
  await waitFor('a heartbeat handled', async () => /^edgefleet_mqtt_handling_seconds_count\{channel="heartbeat"\} [1-9]/m.test((await fleet.api('/metrics')).text));
  const r = await fetch(`${fleet.cp.httpUrl}/metrics`, { headers: { authorization: `Bearer ${fleet.token}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  // the names that existed before prom-client, with their types
  const before: [string, 'counter' | 'gauge'][] = [
    ['edgefleet_devices', 'gauge'],
    ['edgefleet_devices_by_profile', 'gauge'],
    ['edgefleet_devices_by_agent_version', 'gauge'],
    ['edgefleet_training_jobs', 'gauge'],
    ['edgefleet_rollouts', 'gauge'],
    ['edgefleet_rollout_devices', 'gauge'],
    ['edgefleet_model_versions', 'gauge'],
    ['edgefleet_mqtt_messages_accepted_total', 'counter'],
    ['edgefleet_http_requests_total', 'counter'],
    ['edgefleet_http_unauthorized_total', 'counter'],
    ['edgefleet_http_bad_requests_total', 'counter'],
  ];
  for (const [name, type] of before) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  assert.match(text, /^edgefleet_devices\{status="online"\} 1$/m);
  assert.match(text, new RegExp(`^edgefleet_devices_by_profile\\{profile="${SIMULATED[0]!.expectProfile}"\\} 1$`, 'm'));
  assert.match(text, /^edgefleet_mqtt_messages_accepted_total\{channel="birth"\} [1-9]\d*$/m);
  assert.match(text, /^edgefleet_http_unauthorized_total [1-9]\d*$/m);
  assert.match(text, /^edgefleet_http_bad_requests_total\{route="\/devices\/:id"\} 1$/m);
  // histograms
  assert.match(text, /^# TYPE edgefleet_http_request_duration_seconds histogram$/m);
  assert.match(text, /^edgefleet_http_request_duration_seconds_bucket\{le="\+Inf",method="PATCH",route="\/devices\/:id",status="400"\} 1$/m);
  // refused by the token check before any route matched: the route label is the middleware's pattern, not the raw path
  assert.match(text, /^edgefleet_http_request_duration_seconds_count\{method="GET",route="\/\*",status="401"\} 1$/m);
  assert.match(text, /^edgefleet_http_request_duration_seconds_count\{method="GET",route="\/devices",status="200"\} [1-9]\d*$/m);
  assert.match(text, /^# TYPE edgefleet_mqtt_handling_seconds histogram$/m);
  assert.match(text, /^edgefleet_mqtt_handling_seconds_count\{channel="birth"\} [1-9]\d*$/m);
  assert.match(text, /^edgefleet_mqtt_handling_seconds_count\{channel="enroll"\} 1$/m);
  // process metrics
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
});
