import mqtt, { type MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import { isValidId } from '../../shared/ids.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { BrokerAccess, BrokerAvailability } from './broker-access.ts';
import { BrokerUnavailableError } from './broker-access.ts';
import { CommandQueue, ConnectionLost } from './command-queue.ts';
import { deviceLoginAllowed } from './login-rules.ts';
import type { LoginSnapshot } from './store-snapshot.ts';

export const CONTROL_TOPIC = '$CONTROL/edgefleet-auth/v1';
export const RESPONSE_TOPIC = '$CONTROL/edgefleet-auth/v1/response';
const TOKEN_ID = /^[a-z0-9]{6,32}$/;
const HASH = /^sha256\$[A-Za-z0-9+/=]{4,64}\$[A-Za-z0-9+/=]{44}$/;

export type MosquittoAuthOptions = {
  url: string;
  username: string;
  password: string;
  log: Logger;
  metrics: Metrics;
  /** Every login the broker should hold, from the store (store-snapshot.ts). */
  snapshot: () => LoginSnapshot;
  /** How long a grant may wait for the broker before it is refused (the caller answers 503). */
  grantTimeoutMs?: number;
  /** How long a revocation call waits for the broker before returning (it stays queued). */
  revokeWaitMs?: number;
  /** How long one message may go unanswered before it is sent again. */
  answerTimeoutMs?: number;
  statsEveryMs?: number;
};

const STAT_REASONS: Record<string, string> = { bad_credentials: 'bad-credentials', client_id: 'client-id', reserved: 'reserved', malformed: 'malformed', braked: 'braked' };

/**
 * Mosquitto with EdgeFleet's auth plugin (mosquitto-plugin/edgefleet_auth.c): each grant or
 * revocation is one line to the plugin, O(1) in the broker; lines are queued, batched, pipelined
 * with bounded concurrency and retried (command-queue.ts). After every (re)connect the whole login
 * set is sent again from the store, so changes made while the broker was away are never lost.
 */
export class MosquittoAuth implements BrokerAccess {
  readonly kind = 'mosquitto' as const;
  private client: MqttClient | null = null;
  private readonly pending = new Map<string, { resolve: (text: string) => void; reject: (e: Error) => void }>();
  private readonly queue: CommandQueue;
  private readonly transfers = new Map<string, Set<string>>();
  private synced = false;
  private lastError = 'not connected yet';
  private statsTimer: NodeJS.Timeout | null = null;
  private readonly lastStats = new Map<string, number>();
  private closed = false;

  constructor(private readonly o: MosquittoAuthOptions) {
    this.queue = new CommandQueue({ send: (lines) => this.send(lines), unavailableReason: () => this.unavailableReason() });
  }

  async init(): Promise<void> {
    const client = mqtt.connect(this.o.url, {
      protocolVersion: 4,
      clientId: `edgefleet-auth-${randomUUID().slice(0, 8)}`,
      username: this.o.username,
      password: this.o.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      clean: true,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('close', () => {
      if (this.synced) this.o.log.warn('broker connection lost; grants wait, revocations queue', { broker: this.o.url });
      this.synced = false;
      this.queue.setOpen(false);
      for (const p of this.pending.values()) p.reject(new ConnectionLost('connection to the broker lost'));
      this.pending.clear();
    });
    client.on('error', (e) => {
      this.lastError = e.message;
      this.o.log.warn('broker admin session error', { error: e.message });
    });
    const resync = (): void => {
      void this.resync().catch((e: unknown) => {
        this.lastError = `resync failed: ${String(e)}`;
        this.o.log.warn('broker resync failed; trying again', { error: String(e) });
        setTimeout(() => {
          if (client.connected && !this.synced && !this.closed) resync();
        }, 2000).unref();
      });
    };
    client.on('connect', resync);
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(new Error(`EdgeFleet auth plugin admin login to ${this.o.url} failed: ${e.message}`));
      client.once('error', onErr);
      const wait = setInterval(() => {
        if (this.synced) {
          clearInterval(wait);
          client.off('error', onErr);
          resolve();
        }
      }, 20);
    });
    this.statsTimer = setInterval(() => void this.pollStats(), this.o.statsEveryMs ?? 2000);
    this.statsTimer.unref();
  }

  availability(): BrokerAvailability {
    return this.synced ? { ok: true } : { ok: false, reason: this.unavailableReason() };
  }

  private unavailableReason(): string {
    if (this.client?.connected) return `resynchronising logins with Mosquitto at ${this.o.url}`;
    return `Mosquitto at ${this.o.url} is unreachable (${this.lastError})`;
  }

  /** Sends the store's whole login set as one sync generation; stale logins are dropped (and kicked) at its end. */
  private async resync(): Promise<void> {
    const client = this.client!;
    const granted = await client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    if (granted.some((g) => g.qos >= 128)) throw new Error(`broker refused ${RESPONSE_TOPIC}: is the EdgeFleet auth plugin loaded and ${this.o.username} its admin?`);
    const started = Date.now();
    const gen = started;
    const snap = this.o.snapshot();
    const lines = [
      ...snap.devices.map((d) => `device ${d.id} ${d.hash}`),
      ...snap.tokens.map((t) => `token ${t.id} ${t.hash}`),
      ...[...this.transfers].flatMap(([t, ids]) => [...ids].map((d) => `xfer ${t} ${d}`)),
    ];
    await this.sendChecked([`sync-begin ${gen}`]);
    for (let i = 0; i < lines.length; i += 1000) await this.sendChecked(lines.slice(i, i + 1000));
    await this.sendChecked([`sync-end ${gen}`]);
    this.synced = true;
    this.lastError = '';
    this.o.log.info('broker logins synchronised', { devices: snap.devices.length, tokens: snap.tokens.length, transfers: this.transfers.size, ms: Date.now() - started });
    this.queue.setOpen(true);
  }

  private async sendChecked(lines: string[]): Promise<void> {
    const results = await this.send(lines);
    const errors = results.map((r, i) => (r ? `${lines[i]!.split(' ').slice(0, 2).join(' ')}: ${r}` : null)).filter(Boolean);
    if (errors.length) this.o.log.warn('broker refused lines of the login sync', { errors: errors.slice(0, 5), count: errors.length });
  }

  /** One message to the plugin and its answer; rejects with ConnectionLost when it cannot be answered. */
  private async send(lines: string[]): Promise<(string | null)[]> {
    const client = this.client;
    if (!client?.connected) throw new ConnectionLost('not connected');
    const corr = randomUUID();
    const answered = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(corr);
        reject(new ConnectionLost(`no answer within ${this.o.answerTimeoutMs ?? 30_000} ms`));
      }, this.o.answerTimeoutMs ?? 30_000);
      timer.unref();
      this.pending.set(corr, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
    // QoS 0: a message lost with its connection is resent by the queue, never replayed stale by the client library.
    // Both awaited together, so a timeout before the publish settles is never an unhandled rejection.
    const [, text] = await Promise.all([client.publishAsync(CONTROL_TOPIC, `req ${corr}\n${lines.join('\n')}`, { qos: 0 }), answered]);
    const results: (string | null)[] = lines.map(() => null);
    for (const l of text.split('\n').slice(1)) {
      const m = /^err (\d+) (.*)$/.exec(l);
      if (m) results[Number(m[1]) - 2] = m[2]!; // line 1 is "req <corr>"
      if (l.startsWith('stats ')) this.recordStats(l);
    }
    return results;
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic !== RESPONSE_TOPIC) return;
    const text = payload.toString('utf8');
    const m = /^res (\S+)/.exec(text);
    const p = m ? this.pending.get(m[1]!) : undefined;
    if (!p) return;
    this.pending.delete(m![1]!);
    p.resolve(text);
  }

  private async pollStats(): Promise<void> {
    if (!this.synced) return;
    await this.queue.enqueue('stats', 5000).catch(() => {});
  }

  /** The plugin's counters since it started, exported as deltas (a broker restart starts them again). */
  private recordStats(line: string): void {
    for (const kv of line.slice('stats '.length).split(' ')) {
      const [k, v] = kv.split('=') as [string, string];
      const n = Number(v);
      if (!Number.isFinite(n)) continue;
      const last = this.lastStats.get(k) ?? 0;
      const delta = n >= last ? n - last : n;
      this.lastStats.set(k, n);
      if (delta <= 0) continue;
      const reason = STAT_REASONS[k];
      if (reason) this.o.metrics.inc('edgefleet_broker_auth_failures_total', 'MQTT logins refused by the broker, by reason', { reason }, delta);
      else if (k === 'acl_denied') this.o.metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: 'any' }, delta);
      else if (k === 'retain_denied') this.o.metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: 'publish-retained' }, delta);
    }
  }

  private grant(line: string): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerUnavailableError('broker session closed'));
    return this.queue.enqueue(line, this.o.grantTimeoutMs ?? 15_000);
  }

  private async revoke(line: string): Promise<void> {
    if (this.closed) return;
    const applied = this.queue.enqueue(line, null).catch(() => {});
    if (!this.synced) return; // queued; applied (or superseded by the resync) when the broker is back
    await Promise.race([applied, new Promise((r) => setTimeout(r, this.o.revokeWaitMs ?? 5000).unref())]);
  }

  async grantDevice(deviceId: string, passwordHash: string): Promise<void> {
    if (!deviceLoginAllowed(deviceId)) throw new Error(`refusing a broker login for reserved or invalid device id "${deviceId}"`);
    if (!HASH.test(passwordHash)) throw new Error('device credential hash is not in the sha256$salt$digest form');
    await this.grant(`device ${deviceId} ${passwordHash}`);
  }

  async revokeDevice(deviceId: string): Promise<void> {
    if (!deviceLoginAllowed(deviceId)) return; // never a broker login: nothing to remove (and never the control plane's)
    await this.revoke(`undevice ${deviceId}`);
  }

  async grantEnrollmentToken(tokenId: string, secretHash: string): Promise<void> {
    if (!TOKEN_ID.test(tokenId)) throw new Error(`invalid enrollment token id "${tokenId}"`);
    if (!HASH.test(secretHash)) throw new Error('enrollment token hash is not in the sha256$salt$digest form');
    await this.grant(`token ${tokenId} ${secretHash}`);
  }

  async revokeEnrollmentToken(tokenId: string): Promise<void> {
    if (!TOKEN_ID.test(tokenId)) return;
    await this.revoke(`untoken ${tokenId}`);
  }

  async grantTransferRead(transferId: string, deviceIds: readonly string[]): Promise<void> {
    if (!isValidId('transfer', transferId)) throw new Error(`invalid transfer id "${transferId}"`);
    const ids = deviceIds.filter((d) => deviceLoginAllowed(d));
    const set = this.transfers.get(transferId) ?? new Set<string>();
    for (const d of ids) set.add(d);
    this.transfers.set(transferId, set);
    await Promise.all(ids.map((d) => this.grant(`xfer ${transferId} ${d}`)));
  }

  async revokeTransfer(transferId: string): Promise<void> {
    if (!isValidId('transfer', transferId)) return;
    this.transfers.delete(transferId);
    await this.revoke(`unxfer ${transferId}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.queue.clear('broker session closed');
    for (const p of this.pending.values()) p.reject(new ConnectionLost('closed'));
    this.pending.clear();
    await this.client?.endAsync(true).catch(() => {});
    this.client = null;
  }
}
