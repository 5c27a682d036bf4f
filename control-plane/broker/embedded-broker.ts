import { Aedes } from 'aedes';
import type { Client, PublishPacket, Subscription } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_MQTT_PACKET_BYTES } from '../../shared/transfer.ts';
import {
  CONTROL_PLANE_USERNAME,
  TOPIC_ROOT,
  deviceMayPublish,
  deviceMaySubscribe,
  enrolleeMayPublish,
  enrolleeMaySubscribe,
  parseTopic,
  parseTransferDataTopic,
} from '../../shared/topics.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceStore } from '../store/devices.ts';
import { verifySecret } from '../store/secrets.ts';
import { tokenUnusableReason, type TokenStore } from '../store/tokens.ts';
import { AuthBrake, DEFAULT_BRAKE, type BrakeKeys, type BrakeOptions } from './auth-brake.ts';
import type { BrokerAccess, BrokerAvailability } from './broker-access.ts';
import { indexedMemoryPersistence } from './indexed-persistence.ts';
import { isStaleConnect, willStamp } from './stale-connect.ts';
import { classifyLogin, deviceLoginAllowed } from './login-rules.ts';
import { connectionCap, ownOpenFileLimit } from './connection-cap.ts';
import { ThrottledLog } from '../../shared/throttled-log.ts';
import { coalesceWrites, type Corkable } from '../../shared/coalesce-writes.ts';

type Role = 'control-plane' | 'enrollee' | 'device';

export type EmbeddedBrokerOptions = {
  host: string;
  port: number;
  controlPlanePassword: string;
  devices: DeviceStore;
  tokens: TokenStore;
  metrics: Metrics;
  log: Logger;
  now?: () => number;
  brake?: Partial<BrakeOptions>;
  maxPacketBytes?: number;
  /** At most this many MQTT connections, the control plane's own included (default: open-file limit less a reserve). */
  maxConnections?: number;
};

const AUTH_FAILURES = 'edgefleet_broker_auth_failures_total';
const AUTH_FAILURES_HELP = 'MQTT logins refused by the broker, by reason';
const OVERSIZE = 'edgefleet_broker_oversize_packets_total';
const REFUSED = 'edgefleet_broker_connections_refused_total';

/** aedes on a TCP port, authenticating against the store and enforcing per-device topic isolation. */
export class EmbeddedBroker implements BrokerAccess {
  readonly kind = 'embedded' as const;
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly roles = new WeakMap<Client, Role>();
  private readonly brake: AuthBrake;
  /** transfer id -> devices that may read its shared data topic */
  private readonly transferReaders = new Map<string, Set<string>>();
  private readonly now: () => number;

  constructor(private readonly opts: EmbeddedBrokerOptions) {
    this.brake = new AuthBrake({ ...DEFAULT_BRAKE, ...opts.brake });
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<string> {
    const { log, metrics } = this.opts;
    // client ids up to `enroll-` + a 64-character device id; retained messages indexed by topic:
    // every device's retained status would otherwise make each SUBSCRIBE cost O(fleet)
    const { persistence } = indexedMemoryPersistence();
    const aedes = await Aedes.createBroker({ maxClientsIdLength: 80, heartbeatInterval: 60_000, drainTimeout: 30_000, persistence });
    this.aedes = aedes;
    aedes.authenticate = (client, username, password, done) => {
      this.authenticate(client, username ?? '', password?.toString('utf8') ?? '').then(
        (role) => {
          if (role === 'device' && this.staleConnect(client)) {
            // no CONNACK 0, no will registered, the live connection untouched; 3 (server unavailable) makes a real agent retry
            done(Object.assign(new Error('an older connect of a connected device'), { returnCode: 3 }) as never, false);
          } else if (role) {
            this.roles.set(client, role);
            // the control plane's one connection carries every device's messages: see coalesce-writes.ts
            if (role === 'control-plane') coalesceWrites((client as unknown as { conn: Corkable }).conn);
            done(null, true);
          } else {
            const err = Object.assign(new Error('not authorized'), { returnCode: 5 });
            done(err as never, false);
          }
        },
        (e: unknown) => {
          log.error('broker authentication error', { error: String(e) });
          done(Object.assign(new Error('server unavailable'), { returnCode: 3 }) as never, false);
        },
      );
    };
    aedes.authorizePublish = (client, packet, done) => {
      if (this.mayPublish(client, packet)) return done(null);
      metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: packet.retain ? 'publish-retained' : 'publish' });
      log.warn('publish denied by topic isolation', { clientId: client?.id ?? null, topic: packet.topic, retain: packet.retain });
      done(new Error(`not authorized to publish to ${packet.topic}`));
    };
    aedes.authorizeSubscribe = (client, sub, done) => {
      if (this.maySubscribe(client, sub)) return done(null, sub);
      metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: 'subscribe' });
      log.warn('subscribe denied by topic isolation', { clientId: client.id, topic: sub.topic });
      done(null, null); // SUBACK 0x80 for this filter, connection stays
    };
    // checked at every delivery, so a revoked transfer grant stops the data at once
    aedes.authorizeForward = (client, packet) => {
      const transferId = parseTransferDataTopic(packet.topic);
      if (transferId === null || this.roles.get(client) === 'control-plane') return packet;
      return this.transferReaders.get(transferId)?.has(client.id) ? packet : null;
    };
    aedes.on('clientError', (client, err) => log.debug('mqtt client error', { clientId: client.id, error: err.message }));
    this.server = createServer((socket) => {
      // Nagle off: small packets (PUBACKs, SUBACKs, commands) go out at once (see shared/mqtt-nodelay.ts)
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.limitPacketSize(aedes.handle(socket) as Client & { _parser: PacketParser }, socket);
    });
    this.capConnections(this.server);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    return `mqtt://${this.opts.host}:${addr.port}`;
  }

  /** See connection-cap.ts: past the cap a connection is closed at once, counted, and logged once a minute. */
  private capConnections(server: Server): void {
    const { log, metrics } = this.opts;
    const cap = connectionCap(this.opts.maxConnections, ownOpenFileLimit());
    if (cap.max === null) return;
    server.maxConnections = cap.max;
    log.info('embedded broker connection cap', { maxConnections: cap.max, source: cap.source, openFileLimit: cap.openFileLimit });
    if (cap.source === 'open-file limit' && cap.openFileLimit !== null && cap.openFileLimit < 4096) {
      log.warn('the open-file limit is low: the embedded broker holds at most this many devices; raise it (ulimit -n, systemd LimitNOFILE, docker --ulimit nofile)', { maxConnections: cap.max, openFileLimit: cap.openFileLimit });
    }
    const refusals = new ThrottledLog(log, { now: this.now });
    server.on('drop', () => {
      metrics.inc(REFUSED, 'MQTT connections closed at accept because the broker is at its connection cap', { reason: 'max-connections' });
      refusals.warn('embedded broker at its connection cap: new connections are closed (raise the open-file limit or --max-connections)', 'broker', 'max-connections', { maxConnections: cap.max });
    });
  }

  /**
   * Checked after authentication, a few microtasks before aedes registers the client (and takes over a live
   * connection with the same id): see stale-connect.ts.
   */
  private staleConnect(client: Client): boolean {
    const clients = (this.aedes as unknown as { clients?: Record<string, Client & { will?: WillPacket | null }> } | null)?.clients;
    const live = clients?.[client.id];
    if (!live || live === client) return false;
    const incoming = (client as Client & { _will?: WillPacket | null })._will;
    if (!isStaleConnect(willStamp(incoming), willStamp(live.will))) return false;
    this.opts.metrics.inc('edgefleet_broker_stale_connects_refused_total', 'CONNECTs refused because they are older than the same device\'s live connection (an attempt its agent gave up on)');
    this.opts.log.info('stale connect refused: the device has a newer live connection', { deviceId: client.id });
    return true;
  }

  /**
   * aedes has no packet-size limit: its parser buffers whatever length a fixed header announces (up
   * to 256 MB). The length is known as soon as the header is read, so a packet announcing more than
   * the limit closes the connection before its body is buffered. Relies on mqtt-packet's parser
   * reading the length in `_parseLength` (covered by test/adversarial/mqtt-packet-size.test.ts).
   */
  private limitPacketSize(client: Client & { _parser: PacketParser }, socket: Socket): void {
    const max = this.opts.maxPacketBytes ?? MAX_MQTT_PACKET_BYTES;
    const parser = client._parser;
    const parseLength = parser._parseLength.bind(parser);
    parser._parseLength = () => {
      const ok = parseLength();
      if (ok && parser.packet.length > max) {
        this.opts.metrics.inc(OVERSIZE, 'MQTT packets over the size limit (connection closed)');
        this.opts.log.warn('oversized MQTT packet: connection closed', { clientId: client.id ?? null, bytes: parser.packet.length, max });
        parser._list.consume(parser._list.length);
        socket.destroy();
        return false;
      }
      return ok;
    };
  }

  private async authenticate(client: Client, username: string, password: string): Promise<Role | null> {
    const keys: BrakeKeys = { clientId: client.id, username, address: remoteAddress(client) };
    const refuse = (reason: string): null => {
      this.opts.metrics.inc(AUTH_FAILURES, AUTH_FAILURES_HELP, { reason });
      return null;
    };
    const login = classifyLogin(username, client.id);
    // a login that can never succeed costs nothing to check and is not braked, but is counted
    if (login.kind === 'refused') return refuse(login.reason);
    // Check first (microseconds), then hold the answer: a parallel burst is all checked at once, so the slot
    // has to be taken after this attempt's failure is on record, or the whole burst would pass before the
    // first failure counted. The answer waits for the slot whatever it is, so an early answer never tells a
    // guesser which try hit.
    const role = await this.check(login, password);
    if (!role) this.brake.failed(keys, this.now());
    const wait = this.brake.admit(keys, this.now());
    if (wait === null) return refuse('braked');
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (role) {
      this.brake.succeeded(keys);
      return role;
    }
    return refuse('bad-credentials');
  }

  private async check(login: Exclude<ReturnType<typeof classifyLogin>, { kind: 'refused' }>, password: string): Promise<Role | null> {
    if (login.kind === 'control-plane') return password === this.opts.controlPlanePassword ? 'control-plane' : null;
    if (login.kind === 'enrollee') {
      const token = this.opts.tokens.get(login.tokenId);
      if (!token || tokenUnusableReason(token, this.now()) !== null) return null;
      return (await verifySecret(password, token.secretHash)) ? 'enrollee' : null;
    }
    const hash = this.opts.devices.credentialHash(login.deviceId);
    return hash && (await verifySecret(password, hash)) ? 'device' : null;
  }

  private mayPublish(client: Client | null, packet: PublishPacket): boolean {
    if (!client) {
      // a will outliving its client: only device status wills exist in this system
      const t = parseTopic(packet.topic);
      return t?.kind === 'device' && t.channel === 'status';
    }
    const role = this.roles.get(client);
    if (role === 'control-plane') return packet.topic.startsWith(`${TOPIC_ROOT}/`);
    if (role === 'device') {
      // retained only where the protocol needs it: the last known status
      if (packet.retain) {
        const t = parseTopic(packet.topic);
        if (t?.kind !== 'device' || t.channel !== 'status') return false;
      }
      return deviceMayPublish(client.id, packet.topic);
    }
    if (role === 'enrollee') return !packet.retain && enrolleeMayPublish(client.id, packet.topic);
    return false;
  }

  private maySubscribe(client: Client, sub: Subscription): boolean {
    const role = this.roles.get(client);
    if (role === 'control-plane') return sub.topic.startsWith(`${TOPIC_ROOT}/`);
    if (role === 'device') {
      const transferId = parseTransferDataTopic(sub.topic);
      if (transferId !== null) return this.transferReaders.get(transferId)?.has(client.id) ?? false;
      return deviceMaySubscribe(client.id, sub.topic);
    }
    if (role === 'enrollee') return enrolleeMaySubscribe(client.id, sub.topic);
    return false;
  }

  async init(): Promise<void> {}

  /**
   * In-process subscriptions for the control plane (see BrokerAccess.subscribeLocal): aedes delivers each matching
   * publish, device wills included, to `deliver` in publish order, before the publisher's PUBACK. bench/ingest-bench.ts
   * (200 devices, 2,000 heartbeats/s): the control plane's CPU per heartbeat 136 / 140 / 142 -> 119 / 123 / 115 us.
   */
  async subscribeLocal(filters: readonly string[], deliver: (topic: string, payload: Buffer) => void): Promise<() => Promise<void>> {
    const aedes = this.aedes;
    if (!aedes) throw new Error('the embedded broker is not running');
    const handler = (packet: PublishPacket, cb: () => void): void => {
      deliver(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
      cb();
    };
    await Promise.all(filters.map((f) => new Promise<void>((resolve) => aedes.subscribe(f, handler as never, () => resolve()))));
    return async () => {
      await Promise.all(filters.map((f) => new Promise<void>((resolve) => aedes.unsubscribe(f, handler as never, () => resolve()))));
    };
  }

  availability(): BrokerAvailability {
    return this.aedes ? { ok: true } : { ok: false, reason: 'the embedded broker is not running' };
  }

  /** The store is the embedded broker's credential list; only the id rule is checked here, as on Mosquitto. */
  async grantDevice(deviceId: string): Promise<void> {
    if (!deviceLoginAllowed(deviceId)) throw new Error(`refusing a broker login for reserved or invalid device id "${deviceId}"`);
  }
  async grantEnrollmentToken(): Promise<void> {}

  async revokeDevice(deviceId: string): Promise<void> {
    if (deviceLoginAllowed(deviceId)) this.disconnect(deviceId);
  }

  async revokeEnrollmentToken(): Promise<void> {}

  async grantTransferRead(transferId: string, deviceIds: readonly string[]): Promise<void> {
    const set = this.transferReaders.get(transferId) ?? new Set<string>();
    for (const id of deviceIds) set.add(id);
    this.transferReaders.set(transferId, set);
  }

  async revokeTransfer(transferId: string): Promise<void> {
    this.transferReaders.delete(transferId);
  }

  private disconnect(clientId: string): void {
    // aedes keeps connected clients in a map its typings do not declare
    const clients = (this.aedes as unknown as { clients?: Record<string, Client> } | null)?.clients;
    clients?.[clientId]?.close();
  }

  async close(): Promise<void> {
    const aedes = this.aedes;
    const server = this.server;
    this.aedes = null;
    this.server = null;
    // Stop listening first: agents reconnect within milliseconds of losing their connection, and a
    // connection accepted while aedes is closing is never registered with it, so it stayed open until
    // aedes' 30 s connect timeout and held the process (and the fleet) for that long on every restart.
    const listenerClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await listenerClosed;
  }
}

type WillPacket = { topic: string; payload: Buffer | string };
type PacketParser = { _parseLength: () => boolean; packet: { length: number }; _list: { length: number; consume(n: number): void } };

function remoteAddress(client: Client): string | null {
  return (client as unknown as { conn?: { remoteAddress?: string } }).conn?.remoteAddress ?? null;
}

/** The control plane's username on the embedded broker (fixed; its password is random per start). */
export const EMBEDDED_CONTROL_PLANE_USERNAME = CONTROL_PLANE_USERNAME;
