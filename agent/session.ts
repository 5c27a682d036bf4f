import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceFacts } from '../shared/facts.ts';
import {
  BirthSchema,
  formatZodError,
  HeartbeatSchema,
  newMsgId,
  PROTOCOL_VERSION,
  ReportSchema,
  StatusSchema,
  XferRequestSchema,
  type Birth,
  type Command,
  type Heartbeat,
  type ModelRef,
  type Report,
} from '../shared/messages.ts';
import { deviceTopic, parseTransferDataTopic, transferDataTopic } from '../shared/topics.ts';
import { noDelay } from '../shared/mqtt-nodelay.ts';
import { coalesceClientWrites } from '../shared/coalesce-writes.ts';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { commandModel, intakeCommand, newCounters, reportUnsupported, type AgentCounters, type CommandContext, type CommandHandlers, type ReportBody } from './commands.ts';
import { MsgIdDedup } from '../shared/dedup.ts';
import type { HealthSample } from './health.ts';
import type { Identity } from './identity.ts';
import { errorMessage, type Logger } from './log.ts';
import { isAuthRefusal } from './mqtt-errors.ts';

export type AgentEvents = {
  connected: [{ seq: number }];
  disconnected: [{ reason: string }];
  /**
   * A connection attempt that ended before its CONNACK (`connack timeout`: the broker answered later than
   * CONNECT_TIMEOUT_MS; `refused`: nothing listening; `closed`: any other end). `stamp` is the attempt's,
   * the one its will carries: a broker that had registered the will publishes it.
   */
  'connect-failed': [{ afterMs: number; reason: string; stamp: number }];
  'reconnect-scheduled': [{ delayMs: number; attempt: number }];
  'auth-failed': [{ error: string }];
  'birth-sent': [Birth];
  'heartbeat-sent': [Heartbeat];
  command: [Command];
  'command-invalid': [{ reason: string }];
  'command-duplicate': [{ msgId: string }];
  'command-failed': [{ command: Command; error: string }];
  'report-sent': [Report];
  stopped: [{ graceful: boolean }];
};

export type SessionOptions = {
  brokerUrl: string;
  identity: Identity;
  stateDir: string;
  agentVersion: string;
  facts: DeviceFacts;
  profileHint: string | null;
  currentModel: ModelRef | null;
  heartbeatIntervalMs: number;
  keepaliveSeconds: number;
  backoff: BackoffOptions;
  handlers: CommandHandlers;
  logger: Logger;
  sampleHealth: () => Promise<HealthSample>;
};

/** How long a CONNECT may wait for its CONNACK. */
export const CONNECT_TIMEOUT_MS = 30_000;

const offlinePayload = (ts: number): string => JSON.stringify(StatusSchema.parse({ v: PROTOCOL_VERSION, state: 'offline', ts }));

/** The device's MQTT session: status, birth, heartbeats, commands; reconnects with backoff until stopped. */
export class DeviceSession extends EventEmitter<AgentEvents> {
  readonly counters: AgentCounters = newCounters();
  private client: MqttClient | null = null;
  private readonly dedup = new MsgIdDedup(1024);
  private readonly backoff: Backoff;
  private readonly startedAt = Date.now();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private seq = -1;
  private isReady = false;
  private activeModel: ModelRef | null;
  private readonly log: Logger;
  private readonly ctx: CommandContext;

  constructor(private readonly opts: SessionOptions) {
    super();
    this.backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF);
    this.activeModel = opts.currentModel;
    this.log = opts.logger;
    this.ctx = {
      deviceId: this.deviceId,
      stateDir: opts.stateDir,
      logger: this.log,
      signingPublicKey: opts.identity.signingPublicKey,
      report: (body) => this.sendReport(body),
      requestChunks: (transferId, chunks, ask) => this.requestChunks(transferId, chunks, ask ?? { shared: false, again: false }),
      listenTransfer: (transferId) => this.listenTransfer(transferId),
      unlistenTransfer: (transferId) => this.unlistenTransfer(transferId),
      activeModel: () => this.activeModel,
      setActiveModel: (m) => {
        this.activeModel = m;
      },
      publishBirth: () => this.publishBirth(),
    };
  }

  get deviceId(): string {
    return this.opts.identity.deviceId;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connected and through the connect sequence (subscribed, online, birth sent). */
  get ready(): boolean {
    return this.isReady && this.connected;
  }

  get commandContext(): CommandContext {
    return this.ctx;
  }

  /**
   * One stamp per connection, used for both its will and its `online`: the control plane orders
   * presence by it, so a late will from an old connection never overrides a newer `online`.
   */
  private sessionStamp = 0;
  /** When the current attempt's CONNECT went out, whether its CONNACK came, and why it failed if it did. */
  private attempt = { startedAt: 0, connacked: false, error: '' };
  /** Shared transfer topics wanted, with the connection seq on which the broker last granted each (-1: not now). */
  private readonly transferSubs = new Map<string, number>();
  /** Per transfer, the connection seq of the last fan-out `join`: a new connection (or subscription) joins again. */
  private readonly joinedOn = new Map<string, number>();

  start(): void {
    const id = this.deviceId;
    this.sessionStamp = Math.max(Date.now(), this.sessionStamp + 1);
    this.attempt = { startedAt: Date.now(), connacked: false, error: '' };
    const client = mqtt.connect(this.opts.brokerUrl, {
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: this.opts.identity.password,
      clean: true,
      keepalive: this.opts.keepaliveSeconds,
      // a broker taking back a whole fleet answers CONNECTs late; giving up after 10 s (as before) made
      // each slow CONNACK a broken connection, a will and another reconnect: the stampede fed itself
      connectTimeout: CONNECT_TIMEOUT_MS,
      // reconnects are ours (backoff with jitter); mqtt.js only knows a fixed period
      reconnectPeriod: 0,
      resubscribe: false,
      will: { topic: deviceTopic(id, 'status'), payload: Buffer.from(offlinePayload(this.sessionStamp)), qos: 1, retain: true },
    });
    this.client = coalesceClientWrites(noDelay(client));
    client.on('connect', () => void this.onConnect());
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (e) => {
      if (!this.attempt.connacked) this.attempt.error = /connack timeout/.test(e.message) ? 'connack timeout' : /ECONNREFUSED/.test(e.message) ? 'refused' : 'closed';
      if (isAuthRefusal(e)) {
        this.log.error('broker refused the device credential', { error: errorMessage(e), hint: 'the device may have been revoked; re-enroll with a new token and a fresh state folder' });
        this.emit('auth-failed', { error: errorMessage(e) });
      } else {
        this.log.warn('mqtt error', { error: errorMessage(e) });
      }
    });
    client.on('close', () => this.onClose());
  }

  private async onConnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.attempt.connacked = true;
    this.counters.connects++;
    this.seq++;
    this.backoff.reset();
    const id = this.deviceId;
    this.log.info('connected', { brokerUrl: this.opts.brokerUrl, seq: this.seq });
    try {
      // subscribe before the birth: the control plane may answer a birth with a command at once
      const granted = await client.subscribeAsync({ [deviceTopic(id, 'cmd')]: { qos: 1 }, [deviceTopic(id, 'xfer/data')]: { qos: 1 } });
      const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length) this.log.error('broker refused subscriptions', { topics: refused });
      await this.publish('status', StatusSchema.parse({ v: PROTOCOL_VERSION, state: 'online', ts: this.sessionStamp }), true);
      await this.publishBirth();
    } catch (e) {
      if (!this.stopping) this.log.warn('connect sequence failed', { error: errorMessage(e) });
      return;
    }
    this.isReady = true;
    this.emit('connected', { seq: this.seq });
    this.startHeartbeats();
    // shared transfer topics: a clean session forgot them. Not part of the connect sequence (status and birth never
    // wait on them): until the SUBACK, asks go to the device's own topic, then the next ask joins the wave again
    for (const transferId of this.transferSubs.keys()) void this.subscribeTransfer(transferId);
  }

  private onClose(): void {
    this.isReady = false;
    this.stopHeartbeats();
    if (!this.attempt.connacked && this.attempt.startedAt) {
      this.emit('connect-failed', { afterMs: Date.now() - this.attempt.startedAt, reason: this.attempt.error || 'closed', stamp: this.sessionStamp });
      this.attempt.startedAt = 0;
    }
    const wasUp = this.seq >= 0 && this.counters.connects > this.counters.disconnects;
    if (wasUp) {
      this.counters.disconnects++;
      this.emit('disconnected', { reason: this.stopping ? 'stopped' : 'connection closed' });
    }
    if (this.stopping || this.reconnectTimer) return;
    const attempt = this.backoff.attempts + 1;
    const delayMs = this.backoff.next();
    this.log.info('reconnect scheduled', { delayMs, attempt });
    this.emit('reconnect-scheduled', { delayMs, attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      const client = this.client;
      if (this.stopping || !client) return;
      // the will carries the time of the connect it was registered with
      this.sessionStamp = Math.max(Date.now(), this.sessionStamp + 1);
      if (client.options.will) client.options.will.payload = Buffer.from(offlinePayload(this.sessionStamp));
      this.attempt = { startedAt: Date.now(), connacked: false, error: '' };
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delayMs);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const id = this.deviceId;
    if (topic === deviceTopic(id, 'xfer/data') || this.transferSubs.has(parseTransferDataTopic(topic) ?? '')) {
      this.counters.transferFrames++;
      const h = this.opts.handlers.transferData;
      if (!h) return;
      Promise.resolve()
        .then(() => h(payload, this.ctx))
        .catch((e: unknown) => this.log.error('transfer handler failed', { error: errorMessage(e) }));
      return;
    }
    if (topic !== deviceTopic(id, 'cmd')) return;
    const intake = intakeCommand(payload, this.dedup, this.counters);
    if (intake.kind === 'invalid') {
      this.log.warn('invalid command ignored', { reason: intake.reason, invalidCount: this.counters.commandsInvalid });
      this.emit('command-invalid', { reason: intake.reason });
      return;
    }
    if (intake.kind === 'duplicate') {
      this.log.info('duplicate command ignored', { msgId: intake.msgId });
      this.emit('command-duplicate', { msgId: intake.msgId });
      return;
    }
    const cmd = intake.command;
    this.log.info('command received', { cmd: cmd.cmd, msgId: cmd.msgId, ...('rolloutId' in cmd ? { rolloutId: cmd.rolloutId } : {}) });
    this.emit('command', cmd);
    void this.runCommand(cmd);
  }

  private async runCommand(cmd: Command): Promise<void> {
    const h = this.opts.handlers;
    try {
      switch (cmd.cmd) {
        case 'rebirth':
          await this.publishBirth();
          break;
        case 'deploy':
          await (h.deploy ?? reportUnsupported)(cmd, this.ctx);
          break;
        case 'benchmark':
          await (h.benchmark ?? reportUnsupported)(cmd, this.ctx);
          break;
        case 'rollback':
          await (h.rollback ?? reportUnsupported)(cmd, this.ctx);
          break;
        case 'evaluate':
          await (h.evaluate ?? reportUnsupported)(cmd, this.ctx);
          break;
      }
      this.counters.commandsHandled++;
    } catch (e) {
      this.counters.commandsFailed++;
      const error = errorMessage(e);
      this.log.error('command failed', { cmd: cmd.cmd, msgId: cmd.msgId, error });
      this.emit('command-failed', { command: cmd, error });
      const model = commandModel(cmd, this.activeModel);
      if (model && cmd.cmd === 'evaluate') {
        await this.sendReport({ kind: 'evaluation', tuningId: cmd.tuningId, model, state: 'failed', result: null, reason: error.slice(0, 1000), loadPerCore: null }).catch(() => {});
      } else if (model && cmd.cmd !== 'rebirth') {
        await this.sendReport({ kind: 'install-state', rolloutId: 'rolloutId' in cmd ? cmd.rolloutId : null, model, state: 'failed', progress: null, reason: error.slice(0, 1000) }).catch(
          () => {},
        );
      }
    }
  }

  async publishBirth(): Promise<void> {
    const birth = BirthSchema.parse({
      v: PROTOCOL_VERSION,
      msgId: newMsgId(),
      ts: Date.now(),
      type: 'birth',
      deviceId: this.deviceId,
      agentVersion: this.opts.agentVersion,
      facts: this.opts.facts,
      profileHint: this.opts.profileHint,
      currentModel: this.activeModel,
      seq: Math.max(0, this.seq),
    });
    await this.publish('birth', birth);
    this.counters.birthsSent++;
    this.log.info('birth sent', { seq: birth.seq, msgId: birth.msgId });
    this.emit('birth-sent', birth);
  }

  private startHeartbeats(): void {
    this.stopHeartbeats();
    void this.sendHeartbeat();
    this.heartbeatTimer = setInterval(() => void this.sendHeartbeat(), this.opts.heartbeatIntervalMs);
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async sendHeartbeat(): Promise<void> {
    try {
      const h = await this.opts.sampleHealth();
      if (!this.connected) return;
      const hb = HeartbeatSchema.parse({
        v: PROTOCOL_VERSION,
        msgId: newMsgId(),
        ts: Date.now(),
        type: 'heartbeat',
        agentVersion: this.opts.agentVersion,
        uptimeSeconds: (Date.now() - this.startedAt) / 1000,
        load1: h.load1,
        cpuPercent: h.cpuPercent,
        memUsedBytes: h.memUsedBytes,
        memTotalBytes: h.memTotalBytes,
        temperatureC: h.temperatureC,
        activeModel: this.activeModel,
      });
      await this.publish('heartbeat', hb);
      this.counters.heartbeatsSent++;
      this.emit('heartbeat-sent', hb);
    } catch (e) {
      this.log.warn('heartbeat failed', { error: errorMessage(e) });
    }
  }

  private async sendReport(body: ReportBody): Promise<void> {
    const parsed = ReportSchema.safeParse({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), ...body });
    if (!parsed.success) throw new Error(`invalid report: ${formatZodError(parsed.error)}`);
    await this.publish('report', parsed.data);
    this.log.info('report sent', { kind: parsed.data.kind, ...('rolloutId' in parsed.data ? { rolloutId: parsed.data.rolloutId } : { tuningId: parsed.data.tuningId }), msgId: parsed.data.msgId, ...(parsed.data.kind === 'install-state' ? { state: parsed.data.state } : {}) });
    this.emit('report-sent', parsed.data);
  }

  /** Subscribes to a transfer's shared data topic on the current connection; false when the broker refuses (not granted). */
  private async subscribeTransfer(transferId: string): Promise<boolean> {
    const client = this.client;
    if (!client?.connected) return false;
    const seq = this.seq;
    try {
      // bounded: a SUBSCRIBE caught by a dropped connection is held by mqtt.js until a reconnect that may not come
      const [g] = await withTimeout(client.subscribeAsync(transferDataTopic(transferId), { qos: 1 }), 10_000);
      const ok = !!g && g.qos !== 128;
      if (!this.transferSubs.has(transferId)) {
        // no longer wanted (the download ended meanwhile)
        if (ok && client.connected) void client.unsubscribeAsync(transferDataTopic(transferId)).catch(() => {});
        return false;
      }
      this.transferSubs.set(transferId, ok && seq === this.seq ? seq : -1);
      if (!ok) this.log.info('shared transfer topic not granted; pulling on the device topic', { transferId });
      return ok && seq === this.seq;
    } catch (e) {
      // mqtt.js rejects on a SUBACK failure code: the transfer is not granted to this device (or not by this broker)
      if (this.transferSubs.has(transferId)) this.transferSubs.set(transferId, -1);
      this.log.info('shared transfer topic not granted; pulling on the device topic', { transferId, error: errorMessage(e) });
      return false;
    }
  }

  private async listenTransfer(transferId: string): Promise<boolean> {
    this.transferSubs.set(transferId, -1);
    return this.subscribeTransfer(transferId);
  }

  /**
   * Not awaited: mqtt.js holds an UNSUBSCRIBE made while disconnected until a reconnect that may never come (the
   * embedded broker restarts with the control plane), and a download must not wait on it. A clean session forgets
   * the subscription anyway, and it is no longer made again on connect.
   */
  private async unlistenTransfer(transferId: string): Promise<void> {
    this.transferSubs.delete(transferId);
    this.joinedOn.delete(transferId);
    const client = this.client;
    if (client?.connected) void client.unsubscribeAsync(transferDataTopic(transferId)).catch(() => {});
  }

  /**
   * `ask.shared`: the download listens on the transfer's shared topic; the ask carries `fanout` only while that
   * subscription holds on this very connection (its SUBACK came before this ask: see control-plane/delivery/fanout-wave.ts).
   */
  private async requestChunks(transferId: string, chunks: number[], ask: { shared: boolean; again: boolean }): Promise<void> {
    let fanout: 'join' | 'next' | 'repair' | undefined;
    if (ask.shared && this.connected && this.transferSubs.get(transferId) === this.seq) {
      fanout = this.joinedOn.get(transferId) !== this.seq ? 'join' : ask.again ? 'repair' : 'next';
      this.joinedOn.set(transferId, this.seq);
    }
    const parsed = XferRequestSchema.safeParse({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), transferId, chunks, ...(fanout ? { fanout } : {}) });
    if (!parsed.success) throw new Error(`invalid transfer request: ${formatZodError(parsed.error)}`);
    await this.publish('xfer/req', parsed.data);
  }

  private async publish(channel: 'status' | 'birth' | 'heartbeat' | 'report' | 'xfer/req', body: unknown, retain = false): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('session not started');
    try {
      await client.publishAsync(deviceTopic(this.deviceId, channel), JSON.stringify(body), { qos: 1, retain });
    } catch (e) {
      this.counters.publishErrors++;
      throw e;
    }
  }

  /** Graceful: retained `offline`, then DISCONNECT (the broker drops the will). Not graceful: the socket is cut and the broker publishes the will. */
  async stop(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const graceful = opts.graceful ?? true;
    if (this.stopping) return;
    this.stopping = true;
    this.stopHeartbeats();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    if (client) {
      if (graceful && client.connected) {
        // the goodbye carries the stamp of the connection that announced itself online, as its will does: the control
        // plane writes it at once (an offline stamped newer than the recorded online is a broken reconnect's will, held)
        await withTimeout(this.publish('status', JSON.parse(offlinePayload(this.sessionStamp)) as unknown, true), opts.timeoutMs ?? 3000).catch((e: unknown) =>
          this.log.warn('could not publish offline status', { error: errorMessage(e) }),
        );
        await withTimeout(client.endAsync(), opts.timeoutMs ?? 3000).catch(() => client.end(true));
      } else {
        await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
      }
    }
    this.log.info('stopped', { graceful });
    this.emit('stopped', { graceful });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}
