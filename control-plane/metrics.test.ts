import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LONG_BUCKETS, Metrics } from './metrics.ts';

const line = (text: string, re: RegExp): string | undefined => text.split('\n').find((l) => re.test(l));

test('counters keep their name, labels and counts; a counter later used with more labels keeps what it counted', async () => {
  const m = new Metrics({ processMetrics: false });
  m.inc('edgefleet_x_total', 'x');
  m.inc('edgefleet_x_total', 'x', {}, 4);
  m.inc('edgefleet_mqtt_messages_rejected_total', 'rejected', { channel: 'birth', reason: 'invalid-payload' });
  m.inc('edgefleet_mqtt_messages_rejected_total', 'rejected', { channel: 'birth', reason: 'invalid-payload' }, 2);
  assert.equal(m.get('edgefleet_x_total'), 5);
  assert.equal(m.get('edgefleet_mqtt_messages_rejected_total', { reason: 'invalid-payload', channel: 'birth' }), 3, 'label order does not matter');
  m.inc('edgefleet_x_total', 'x', { kind: 'late' }, 2);
  assert.equal(m.total('edgefleet_x_total'), 7);
  const text = await m.render();
  assert.match(text, /^# TYPE edgefleet_x_total counter$/m);
  assert.match(text, /^edgefleet_x_total 5$/m, 'the unlabelled count survives re-registration');
  assert.match(text, /^edgefleet_x_total\{kind="late"\} 2$/m);
  assert.match(text, /^edgefleet_mqtt_messages_rejected_total\{channel="birth",reason="invalid-payload"\} 3$/m);
});

test('gauges are read at scrape time; one whose read throws reports nothing and the rest still render', async () => {
  const m = new Metrics({ processMetrics: false });
  let online = 2;
  m.gauge('edgefleet_devices', 'Devices by status', () => [{ labels: { status: 'online' }, value: online }]);
  m.gauge('edgefleet_broken', 'a room not started', () => {
    throw new Error('not started');
  });
  assert.match(await m.render(), /^edgefleet_devices\{status="online"\} 2$/m);
  online = 7;
  const text = await m.render();
  assert.match(text, /^edgefleet_devices\{status="online"\} 7$/m);
  assert.match(text, /^# TYPE edgefleet_broken gauge$/m);
  assert.equal(line(text, /^edgefleet_broken/), undefined);
});

test('histograms: buckets, count and sum; labels not declared are dropped, not thrown; bad values ignored', async () => {
  const m = new Metrics({ processMetrics: false });
  const h = m.histogram('edgefleet_http_request_duration_seconds', 'latency', ['method', 'route', 'status']);
  h.observe({ method: 'GET', route: '/devices/:id', status: '200' }, 0.003);
  h.observe({ method: 'GET', route: '/devices/:id', status: '200', extra: 'dropped' }, 0.2);
  h.observe({ method: 'GET', route: '/devices/:id', status: '200' }, Number.NaN);
  h.observe({ method: 'GET', route: '/devices/:id', status: '200' }, -1);
  assert.equal(m.histogram('edgefleet_http_request_duration_seconds', 'latency', ['method', 'route', 'status']) !== undefined, true, 'asking again is fine');
  m.observe('edgefleet_training_phase_duration_seconds', 'phases', { phase: 'distill' }, 42, LONG_BUCKETS);
  const stop = m.histogram('edgefleet_mqtt_handling_seconds', 'mqtt', ['channel']).startTimer({ channel: 'heartbeat' });
  assert.ok(stop() >= 0);
  const text = await m.render();
  assert.match(text, /^# TYPE edgefleet_http_request_duration_seconds histogram$/m);
  assert.match(text, /^edgefleet_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/devices\/:id",status="200"\} 1$/m);
  assert.match(text, /^edgefleet_http_request_duration_seconds_bucket\{le="0\.25",method="GET",route="\/devices\/:id",status="200"\} 2$/m);
  assert.match(text, /^edgefleet_http_request_duration_seconds_count\{method="GET",route="\/devices\/:id",status="200"\} 2$/m);
  assert.match(text, /^edgefleet_training_phase_duration_seconds_bucket\{le="60",phase="distill"\} 1$/m);
  assert.match(text, /^edgefleet_training_phase_duration_seconds_bucket\{le="30",phase="distill"\} 0$/m);
  assert.match(text, /^edgefleet_mqtt_handling_seconds_count\{channel="heartbeat"\} 1$/m);
  assert.doesNotMatch(text, /extra=/);
});

test('process metrics come with every Metrics but can be left out', async () => {
  const withProcess = await new Metrics().render();
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.match(withProcess, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.doesNotMatch(await new Metrics({ processMetrics: false }).render(), /process_cpu/);
});
