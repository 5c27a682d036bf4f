import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { EnrollResponseSchema, newMsgId, parsePayload, type EnrollResponse } from '../../shared/messages.ts';
import { noDelay } from '../../shared/mqtt-nodelay.ts';
import { coalesceClientWrites } from '../../shared/coalesce-writes.ts';
import { enrollClientId, enrollRequestTopic, enrollResponseTopic, enrollUsername, splitEnrollmentToken } from '../../shared/topics.ts';

/**
 * Raw MQTT 3.1.1 connect that resolves with the client or rejects with the broker's refusal. Nagle off, as on EdgeFleet's
 * own clients: the delivery bench's raw baseline must not be slowed by what the agents are spared.
 */
export async function connectRaw(url: string, opts: { clientId: string; username: string; password: string }): Promise<MqttClient> {
  const client = coalesceClientWrites(noDelay(mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true, ...opts })));
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
    client.once('close', () => reject(new Error('connection closed before CONNACK')));
  });
}

/** Enrolls by the wire protocol alone (no agent code), returning the device's own password. */
export async function enrollRaw(url: string, token: string, deviceId: string): Promise<{ password: string; response: EnrollResponse }> {
  const parts = splitEnrollmentToken(token);
  if (!parts) throw new Error('bad token format');
  const client = await connectRaw(url, { clientId: enrollClientId(deviceId), username: enrollUsername(parts.tokenId), password: parts.secret });
  const password = randomBytes(32).toString('base64url');
  try {
    const answer = new Promise<EnrollResponse>((resolve, reject) => {
      client.on('message', (_t, payload) => {
        const r = parsePayload(EnrollResponseSchema, payload);
        if (r.ok) resolve(r.value);
        else reject(new Error(r.error));
      });
    });
    const granted = await client.subscribeAsync(enrollResponseTopic(deviceId), { qos: 1 });
    if (granted[0]?.qos === 128) throw new Error('enroll response subscription refused');
    await client.publishAsync(enrollRequestTopic(deviceId), JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), deviceId, token, password, agentVersion: 'raw-test' }), { qos: 1 });
    const response = await Promise.race([answer, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no enroll response in 10 s')), 10_000))]);
    return { password, response };
  } finally {
    await client.endAsync();
  }
}

export function birthPayload(deviceId: string, facts: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    v: 1,
    msgId: newMsgId(),
    ts: Date.now(),
    type: 'birth',
    deviceId,
    agentVersion: 'raw-test',
    facts: { platform: 'linux', arch: 'x64', cpu: { cores: 2, flags: ['avx2'] }, memoryBytes: 1 << 30, ...facts },
    seq: 0,
    ...extra,
  });
}

/** A valid heartbeat as an agent sends it; `extra` overrides fields (msgId, uptimeSeconds, agentVersion...). */
export function heartbeatPayload(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ v: 1, msgId: newMsgId(), ts: Date.now(), type: 'heartbeat', agentVersion: 'raw-test', uptimeSeconds: 1, load1: 0.1, cpuPercent: 1, memUsedBytes: 1, memTotalBytes: 2, temperatureC: null, activeModel: null, ...extra });
}

/** SUBACK return codes, one filter at a time (mqtt.js rejects a whole subscribe when any filter gets 0x80). */
export async function subscribeGrants(client: MqttClient, filters: string[]): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for (const f of filters) {
    try {
      const g = await client.subscribeAsync(f, { qos: 1 });
      out.push([f, g[0]?.qos ?? -1]);
    } catch (e) {
      if ((e as Error).name === 'ErrorWithSubackPacket' || /Subscribe error/.test((e as Error).message)) out.push([f, 128]);
      else throw e;
    }
  }
  return out;
}
