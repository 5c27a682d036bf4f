import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BirthSchema, CommandSchema, HeartbeatSchema, ReportSchema, StatusSchema, newMsgId, parsePayload } from './messages.ts';
import { generateSigningKeyPair, signManifest, verifyManifest, canonicalJson } from './signing.ts';
import { deviceMayPublish, deviceMaySubscribe, deviceTopic, enrolleeMayPublish, enrolleeMaySubscribe, enrollClientId, enrollRequestTopic, enrollResponseTopic, parseTopic, splitEnrollmentToken } from './topics.ts';

const facts = { platform: 'linux', arch: 'x64', cpu: { cores: 2 }, memoryBytes: 1024 };

test('messages: a valid birth parses and gets defaults', () => {
  const r = parsePayload(BirthSchema, JSON.stringify({ v: 1, msgId: newMsgId(), ts: 1, type: 'birth', deviceId: 'd1', agentVersion: '0.1.0', facts, seq: 0 }));
  assert.ok(r.ok);
  assert.equal(r.value.profileHint, null);
  assert.deepEqual(r.value.facts.cpu.flags, []);
});

test('messages: malformed payloads are refused with the field named', () => {
  assert.deepEqual(parsePayload(BirthSchema, 'not json{'), { ok: false, error: 'payload is not valid JSON' });
  const wrongVersion = parsePayload(StatusSchema, JSON.stringify({ v: 2, state: 'online', ts: 1 }));
  assert.ok(!wrongVersion.ok && wrongVersion.error.startsWith('v:'));
  const badHb = parsePayload(HeartbeatSchema, JSON.stringify({ v: 1, msgId: newMsgId(), ts: 1, type: 'heartbeat', agentVersion: 'x', uptimeSeconds: 1, load1: -1, cpuPercent: null, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null }));
  assert.ok(!badHb.ok && badHb.error.includes('load1'));
  const badCmd = parsePayload(CommandSchema, JSON.stringify({ v: 1, msgId: newMsgId(), ts: 1, cmd: 'format-disk' }));
  assert.ok(!badCmd.ok && badCmd.error.startsWith('cmd:'));
  const badReport = parsePayload(ReportSchema, JSON.stringify({ v: 1, msgId: newMsgId(), ts: 1, kind: 'install-state', rolloutId: null, model: { modelId: 'm', version: 1 }, state: 'exploded' }));
  assert.ok(!badReport.ok && badReport.error.startsWith('state:'));
});

test('topics: parse, and the isolation rules allow only a device\'s own subtree in the right direction', () => {
  assert.deepEqual(parseTopic(deviceTopic('d1', 'xfer/req')), { kind: 'device', deviceId: 'd1', channel: 'xfer/req' });
  assert.equal(parseTopic('edgefleet/v1/devices/d1/other'), null);
  assert.equal(parseTopic('edgefleet/v1/devices/+/birth'), null);
  assert.equal(parseTopic('elsewhere/d1/birth'), null);
  assert.ok(deviceMayPublish('d1', deviceTopic('d1', 'birth')));
  assert.ok(!deviceMayPublish('d1', deviceTopic('d2', 'birth')));
  assert.ok(!deviceMayPublish('d1', deviceTopic('d1', 'cmd')), 'a device cannot command itself');
  assert.ok(deviceMaySubscribe('d1', deviceTopic('d1', 'cmd')));
  assert.ok(!deviceMaySubscribe('d1', 'edgefleet/v1/devices/+/cmd'));
  assert.ok(!deviceMaySubscribe('d1', 'edgefleet/v1/#'));
  // an enrollee's client id is enroll-<the id it enrolls>: it may ask and hear for that id only
  assert.ok(enrolleeMayPublish(enrollClientId('d1'), enrollRequestTopic('d1')));
  assert.ok(!enrolleeMayPublish(enrollClientId('d1'), enrollRequestTopic('d2')));
  assert.ok(!enrolleeMayPublish('d1', enrollRequestTopic('d1')), 'a bare device id is not an enrollee');
  assert.ok(enrolleeMaySubscribe(enrollClientId('d1'), enrollResponseTopic('d1')));
  assert.ok(!enrolleeMaySubscribe(enrollClientId('d1'), enrollResponseTopic('+')));
  assert.ok(!enrolleeMaySubscribe(enrollClientId('d1'), enrollResponseTopic('d2')));
});

test('enrollment token format', () => {
  assert.deepEqual(splitEnrollmentToken('abc123def456.' + 'x'.repeat(32)), { tokenId: 'abc123def456', secret: 'x'.repeat(32) });
  assert.equal(splitEnrollmentToken('no-dot'), null);
  assert.equal(splitEnrollmentToken('abc123def456.short'), null);
});

test('signing: canonical JSON ignores key order; a tampered manifest fails verification', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
  const keys = generateSigningKeyPair();
  const m = signManifest({ modelId: 'm', version: 1, sha256: 'a'.repeat(64) }, keys.privateKeyPem);
  assert.ok(verifyManifest(m, keys.publicKeyPem));
  assert.ok(!verifyManifest({ ...m, version: 2 }, keys.publicKeyPem));
  assert.ok(!verifyManifest(m, generateSigningKeyPair().publicKeyPem));
  assert.ok(!verifyManifest({ ...m, signature: 'garbage' }, keys.publicKeyPem));
});
