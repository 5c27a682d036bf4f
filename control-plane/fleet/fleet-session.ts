import mqtt, { type MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import {
  BirthSchema,
  EnrollRequestSchema,
  HeartbeatSchema,
  PROTOCOL_VERSION,
  ReportSchema,
  StatusSchema,
  XferRequestSchema,
  parsePayload,
  type Command,
  type EnrollResponse,
  type Report,
  type XferRequest,
} from '../../shared/messages.ts';
import type { DeviceProfile } from '../../shared/profile.ts';
import { CONTROL_PLANE_SUBSCRIPTIONS, CONTROL_PLANE_USERNAME, deviceTopic, enrollResponseTopic, parseTopic, splitEnrollmentToken } from '../../shared/topics.ts';
import { noDelay } from '../../shared/mqtt-nodelay.ts';
import { coalesceClientWrites } from '../../shared/coalesce-writes.ts';
import { keepPublishesWithoutCopy } from './publish-store.ts';
import { BrokerUnavailableError, type BrokerAccess } from '../broker/broker-access.ts';
import { deviceLoginAllowed } from '../broker/login-rules.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceStore } from '../store/devices.ts';
import { hashSecret, verifySecret } from '../store/secrets.ts';
import { tokenUnusableReason, type TokenStore } from '../store/tokens.ts';
import type { PresenceWriter } from './presence-writer.ts';
import { checkId } from '../../shared/ids.ts';
import { ThrottledLog } from '../../shared/throttled-log.ts';
import { decideProfile } from './registration.ts';
import { MsgIdDedup } from '../../shared/dedup.ts';

export type FleetSessionOptions = {
  brokerUrl: string;
  password: string;
  username?: string;
  devices: DeviceStore;
  /** Heartbeats and presence changes go through here: one transaction per tick. */
  presence: PresenceWriter;
  tokens: TokenStore;
  broker: BrokerAccess;
  profiles: () => readonly DeviceProfile[];
  signingPublicKey: string;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
  /** Called for each accepted report and transfer request (delivery and rollouts plug in here). */
  onReport?: (deviceId: string, report: Report) => void;
  onXferRequest?: (deviceId: string, req: XferRequest) => void;
  /** Called after a device's birth is recorded (rollouts hand late devices their model here). */
  onBirth?: (deviceId: string) => void;
};

const ACCEPTED = 'edgefleet_mqtt_messages_accepted_total';
const REJECTED = 'edgefleet_mqtt_messages_rejected_total';
const REPLAYED = 'edgefleet_mqtt_messages_replayed_total';
/** Per channel, bytes a valid payload can reach with every schema bound at its maximum, rounded up. */
const MAX_PAYLOAD_BYTES: Record<string, number> = {
  birth: 192 * 1024, // facts: 1,024 CPU flags of 64 characters dominate
  status: 1024,
  heartbeat: 8 * 1024,
  report: 64 * 1024,
  'xfer/req': 16 * 1024,
  cmd: 1024 * 1024, // not a device's to send: refused as wrong-direction below
  'xfer/data': 1024 * 1024,
  enroll: 8 * 1024,
};

/**
 * The control plane's MQTT session: enrollment, auto-registration, presence, and the inbound side of
 * reports and transfers. Every payload is parsed once here; a bad one is logged, counted and dropped.
 */
export class FleetSession {
  private client: MqttClient | null = null;
  /** Ends the in-process subscription of a broker in this process (BrokerAccess.subscribeLocal). */
  private unsubscribeLocal: (() => Promise<void>) | null = null;
  // QoS 1 re-deliveries come within seconds; 50,000 ids cover minutes of a 10,000-device fleet's traffic
  private readonly seen = new MsgIdDedup(50_000);
  private readonly enrolling = new Set<string>(); // device ids whose broker grant is in flight (bounded by the grant queue)
  private readonly now: () => number;

  private readonly rejections: ThrottledLog;

  constructor(private readonly o: FleetSessionOptions) {
    this.now = o.now ?? Date.now;
    this.rejections = new ThrottledLog(o.log, { now: this.now });
  }

  async start(): Promise<void> {
    // On Mosquitto, MQTT 5 with a large receive maximum: Mosquitto 2.0's queue limit (max_queued_messages)
    // is global, but the in-flight window is per client, so the control plane's window absorbs bursts
    // (thousands of wills at once) that the queue limit would drop, while devices stay bounded.
    const mosquitto = this.o.broker.kind === 'mosquitto';
    const client = mqtt.connect(this.o.brokerUrl, {
      protocolVersion: mosquitto ? 5 : 4,
      ...(mosquitto ? { properties: { receiveMaximum: 65535 } } : {}),
      clientId: `edgefleet-cp-${randomUUID().slice(0, 8)}`,
      username: this.o.username ?? CONTROL_PLANE_USERNAME,
      password: this.o.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      clean: true,
    });
    this.client = keepPublishesWithoutCopy(coalesceClientWrites(noDelay(client)));
    const handling = this.o.metrics.histogram('edgefleet_mqtt_handling_seconds', 'Time to handle one inbound MQTT message (parse, checks, store, callbacks), by channel', ['channel']);
    const onMessage = (topic: string, payload: Buffer): void => {
      const t = parseTopic(topic);
      const done = handling.startTimer({ channel: !t ? 'unknown' : t.kind === 'enroll' ? 'enroll' : t.channel });
      void this.handle(topic, payload)
        .catch((e: unknown) => {
          this.o.metrics.inc(REJECTED, 'MQTT messages rejected, by reason', { channel: 'any', reason: 'internal-error' });
          this.o.log.error('message handler failed', { topic, error: String(e) });
        })
        .finally(() => done());
    };
    // a broker in this process hands the devices' messages over directly; the client then only publishes
    const local = this.o.broker.subscribeLocal?.bind(this.o.broker);
    if (!local) client.on('message', onMessage);
    const subscribe = async (): Promise<void> => {
      const granted = await client.subscribeAsync([...CONTROL_PLANE_SUBSCRIPTIONS], { qos: 1 });
      const refused = granted.filter((g) => g.qos >= 128).map((g) => g.topic);
      if (refused.length) throw new Error(`broker refused the control plane's subscriptions: ${refused.join(', ')}`);
    };
    client.on('error', (e) => this.o.log.warn('fleet session error', { error: e.message }));
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(new Error(`control plane could not log in to ${this.o.brokerUrl}: ${e.message}`));
      client.once('error', onErr);
      client.once('connect', () => {
        client.off('error', onErr);
        resolve();
      });
    });
    if (local) {
      this.unsubscribeLocal = await local(CONTROL_PLANE_SUBSCRIPTIONS, onMessage);
    } else {
      await subscribe();
      // the session is clean: subscribe again after every reconnect
      client.on('connect', () => {
        subscribe().catch((e: unknown) => this.o.log.error('resubscribe failed', { error: String(e) }));
      });
    }
    this.o.log.info('fleet session connected', { broker: this.o.brokerUrl, subscriptions: local ? 'in process' : 'mqtt' });
  }

  async publishCommand(deviceId: string, cmd: Command): Promise<void> {
    await this.publish(deviceTopic(deviceId, 'cmd'), JSON.stringify(cmd));
  }

  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
    if (!this.client) throw new Error('fleet session not started');
    // fail fast during a broker outage (HTTP answers 503) instead of parking the publish until it returns
    if (!this.client.connected) throw new BrokerUnavailableError(`not connected to the broker at ${this.o.brokerUrl}`);
    await this.client.publishAsync(topic, payload, { qos });
  }

  get mqtt(): MqttClient | null {
    return this.client;
  }

  async stop(): Promise<void> {
    // nothing is handled after stop (the store may close next)
    await this.unsubscribeLocal?.();
    this.unsubscribeLocal = null;
    await this.client?.endAsync();
    this.client = null;
  }

  /** Every rejection is counted; the log has one line per device and reason per minute, with a count (issue 8 item 8). */
  private reject(channel: string, reason: string, fields: Record<string, unknown>): void {
    this.o.metrics.inc(REJECTED, 'MQTT messages rejected, by reason', { channel, reason });
    const source = typeof fields['deviceId'] === 'string' ? fields['deviceId'] : 'unknown';
    this.rejections.warn('message rejected', source, `${channel}:${reason}`, { channel, reason, ...fields });
  }

  /** A QoS 1 re-delivery or a replayed msgId: dropped, and counted so a replay flood is visible. */
  private replayed(channel: string): void {
    this.o.metrics.inc(REPLAYED, 'MQTT messages dropped as a msgId seen before (QoS 1 re-delivery or replay), by channel', { channel });
  }

  private accept(channel: string): void {
    this.o.metrics.inc(ACCEPTED, 'MQTT messages accepted, by channel', { channel });
  }

  /** QoS 1 may deliver twice: a message id seen lately is dropped. */
  private duplicate(msgId: string): boolean {
    return !this.seen.firstTime(msgId);
  }

  async handle(topic: string, payload: Buffer): Promise<void> {
    const t = parseTopic(topic);
    if (!t) return this.reject('unknown', 'unknown-topic', { topic });
    // the largest valid payload of each channel is far below these; a bigger one is refused before JSON.parse, so an
    // oversized flood costs a length check, not a parse (issue 8 items 6 and 8)
    const max = t.kind === 'enroll' ? MAX_PAYLOAD_BYTES.enroll : MAX_PAYLOAD_BYTES[t.channel];
    if (payload.length > max) {
      return this.reject(t.kind === 'enroll' ? 'enroll' : t.channel, 'payload-too-large', { deviceId: t.deviceId, bytes: payload.length, max });
    }
    if (t.kind === 'enroll') {
      if (t.direction === 'req') await this.handleEnroll(t.deviceId, payload);
      return;
    }
    const { deviceId, channel } = t;
    // only what routing needs: no JSON columns, no parsing (SELECT * and four JSON.parse per message were a hot spot)
    const dev = this.o.devices.presence(deviceId);
    if (!dev || dev.revokedAt !== null) return this.reject(channel, 'unknown-device', { deviceId });
    const now = this.now();
    switch (channel) {
      case 'birth': {
        const p = parsePayload(BirthSchema, payload);
        if (!p.ok) return this.reject(channel, 'invalid-payload', { deviceId, error: p.error });
        if (p.value.deviceId !== deviceId) return this.reject(channel, 'device-id-mismatch', { deviceId, claimed: p.value.deviceId });
        if (this.duplicate(p.value.msgId)) return this.replayed(channel);
        const decision = decideProfile(p.value.facts, this.o.profiles(), dev.profileOverride, p.value.profileHint);
        const birth = { agentVersion: p.value.agentVersion, facts: p.value.facts, profileId: decision.profileId, profileReason: decision.reason, profileHint: p.value.profileHint, currentModel: p.value.currentModel };
        // hooks (rollouts hand late devices their model) read the stored profile: call them once the batch is written
        this.o.presence.enqueue({ kind: 'birth', deviceId, birth, at: now, written: () => this.o.onBirth?.(deviceId) });
        this.accept(channel);
        this.o.log.info('device registered', { deviceId, profileId: decision.profileId, profileReason: decision.reason, agentVersion: p.value.agentVersion, seq: p.value.seq });
        return;
      }
      case 'status': {
        const p = parsePayload(StatusSchema, payload);
        if (!p.ok) return this.reject(channel, 'invalid-payload', { deviceId, error: p.error });
        // an offline from a connection never heard coming online (a reconnect that broke before its CONNACK) is held a while: see PresenceWriter
        this.o.presence.enqueue({ kind: 'status', deviceId, status: p.value.state, stamp: p.value.ts, reason: p.value.state === 'offline' ? 'will-or-goodbye' : 'status', at: now, holdUnannounced: true });
        this.accept(channel);
        return;
      }
      case 'heartbeat': {
        const p = parsePayload(HeartbeatSchema, payload);
        if (!p.ok) return this.reject(channel, 'invalid-payload', { deviceId, error: p.error });
        if (this.duplicate(p.value.msgId)) return this.replayed(channel);
        this.o.presence.enqueue({ kind: 'heartbeat', deviceId, heartbeat: p.value, at: now });
        this.accept(channel);
        return;
      }
      case 'report': {
        const p = parsePayload(ReportSchema, payload);
        if (!p.ok) return this.reject(channel, 'invalid-payload', { deviceId, error: p.error });
        if (this.duplicate(p.value.msgId)) return this.replayed(channel);
        this.accept(channel);
        this.o.onReport?.(deviceId, p.value);
        return;
      }
      case 'xfer/req': {
        const p = parsePayload(XferRequestSchema, payload);
        if (!p.ok) return this.reject(channel, 'invalid-payload', { deviceId, error: p.error });
        this.accept(channel);
        this.o.onXferRequest?.(deviceId, p.value);
        return;
      }
      default:
        return this.reject(channel, 'wrong-direction', { deviceId });
    }
  }

  private async handleEnroll(topicDeviceId: string, payload: Buffer): Promise<void> {
    const answer = async (r: EnrollResponse): Promise<void> => this.publish(enrollResponseTopic(topicDeviceId), JSON.stringify(r));
    const refuse = async (reason: string, error: string): Promise<void> => {
      this.reject('enroll', reason, { deviceId: topicDeviceId, error });
      await answer({ v: PROTOCOL_VERSION, ok: false, error });
    };
    const p = parsePayload(EnrollRequestSchema, payload);
    if (!p.ok) return refuse('invalid-payload', `invalid enrollment request: ${p.error}`);
    const req = p.value;
    if (req.deviceId !== topicDeviceId) return refuse('device-id-mismatch', 'deviceId in the payload differs from the topic');
    // the one id rule, plus this control plane's own broker login: a device id is a broker username (issue 8 item 2)
    const idCheck = checkId('device', req.deviceId, { reserved: [this.o.username ?? CONTROL_PLANE_USERNAME] });
    if (!idCheck.ok) return refuse('bad-device-id', idCheck.error);
    if (this.duplicate(req.msgId)) return this.replayed('enroll');
    const parts = splitEnrollmentToken(req.token);
    const now = this.now();
    const enrolledHash = this.o.devices.credentialHash(req.deviceId);
    if (enrolledHash && (await verifySecret(req.password, enrolledHash))) {
      // a retry whose first answer was lost: same device, same password; answer again, use nothing up
      this.accept('enroll');
      await answer({ v: PROTOCOL_VERSION, ok: true, deviceId: req.deviceId, signingPublicKey: this.o.signingPublicKey });
      return;
    }
    const token = parts ? this.o.tokens.get(parts.tokenId) : null;
    if (!parts || !token || !(await verifySecret(parts.secret, token.secretHash))) return refuse('bad-token', 'enrollment token not recognised');
    const unusable = tokenUnusableReason(token, now);
    if (unusable) {
      await this.o.broker.revokeEnrollmentToken(token.id).catch(() => {});
      return refuse('bad-token', unusable);
    }
    const existing = this.o.devices.get(req.deviceId);
    if (existing && existing.revokedAt === null && this.o.devices.credentialHash(req.deviceId)) {
      return refuse('already-enrolled', `device ${req.deviceId} is already enrolled; revoke it first (DELETE /devices/${req.deviceId}) to enroll it again`);
    }
    if (!deviceLoginAllowed(req.deviceId)) return refuse('reserved-id', `device id "${req.deviceId}" is reserved for the broker's own logins`);
    // grant, then row: a device recorded as enrolled can always log in. A grant the broker does not
    // take leaves nothing behind; the agent retries with the same password and the token use is kept.
    const passwordHash = hashSecret(req.password);
    // one enrollment per device id at a time: an agent's retry while its grant is in flight is answered by the first
    if (this.enrolling.has(req.deviceId)) return;
    this.enrolling.add(req.deviceId);
    try {
      await this.o.broker.grantDevice(req.deviceId, passwordHash);
    } catch (e) {
      // no answer: "refused" would stop the agent for good, while silence makes it ask again
      return this.reject('enroll', 'broker-unavailable', { deviceId: req.deviceId, error: String(e) });
    } finally {
      this.enrolling.delete(req.deviceId);
    }
    if (!this.o.tokens.consume(token.id, now)) {
      await this.o.broker.revokeDevice(req.deviceId);
      return refuse('bad-token', 'enrollment token used up');
    }
    this.o.devices.createEnrolled(req.deviceId, passwordHash, token.id, now);
    this.accept('enroll');
    this.o.log.info('device enrolled', { deviceId: req.deviceId, tokenId: token.id, agentVersion: req.agentVersion });
    await answer({ v: PROTOCOL_VERSION, ok: true, deviceId: req.deviceId, signingPublicKey: this.o.signingPublicKey });
    const after = this.o.tokens.get(token.id);
    if (after && tokenUnusableReason(after, now)) {
      // removing the broker login disconnects whoever uses it: give the answer time to arrive first
      setTimeout(() => void this.o.broker.revokeEnrollmentToken(token.id).catch(() => {}), 2000).unref();
    }
  }
}

