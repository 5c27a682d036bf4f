import { Aedes } from 'aedes';
import type { Client, PublishPacket, Subscription } from 'aedes';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  CONTROL_PLANE_USERNAME,
  TOPIC_ROOT,
  deviceMayPublish,
  deviceMaySubscribe,
  enrolleeMayPublish,
  enrolleeMaySubscribe,
  isValidDeviceId,
  parseTopic,
} from '../../shared/topics.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceStore } from '../store/devices.ts';
import { verifySecret } from '../store/secrets.ts';
import { tokenUnusableReason, type TokenStore } from '../store/tokens.ts';
import type { BrokerAccess } from './broker-access.ts';

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
};

/** aedes on a TCP port, authenticating against the store and enforcing per-device topic isolation. */
export class EmbeddedBroker implements BrokerAccess {
  readonly kind = 'embedded' as const;
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly roles = new WeakMap<Client, Role>();

  constructor(private readonly opts: EmbeddedBrokerOptions) {}

  async start(): Promise<string> {
    const { log, metrics } = this.opts;
    const aedes = await Aedes.createBroker({ maxClientsIdLength: 64, heartbeatInterval: 60_000, drainTimeout: 30_000 });
    this.aedes = aedes;
    aedes.authenticate = (client, username, password, done) => {
      this.authenticate(client, username ?? '', password?.toString('utf8') ?? '').then(
        (role) => {
          if (role) {
            this.roles.set(client, role);
            done(null, true);
          } else {
            metrics.inc('edgefleet_broker_auth_failures_total', 'MQTT logins refused by the embedded broker');
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
      metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: 'publish' });
      log.warn('publish denied by topic isolation', { clientId: client?.id ?? null, topic: packet.topic });
      done(new Error(`not authorized to publish to ${packet.topic}`));
    };
    aedes.authorizeSubscribe = (client, sub, done) => {
      if (this.maySubscribe(client, sub)) return done(null, sub);
      metrics.inc('edgefleet_broker_acl_denied_total', 'publishes and subscriptions refused by topic isolation', { action: 'subscribe' });
      log.warn('subscribe denied by topic isolation', { clientId: client.id, topic: sub.topic });
      done(null, null); // SUBACK 0x80 for this filter, connection stays
    };
    aedes.on('clientError', (client, err) => log.debug('mqtt client error', { clientId: client.id, error: err.message }));
    this.server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    return `mqtt://${this.opts.host}:${addr.port}`;
  }

  private async authenticate(client: Client, username: string, password: string): Promise<Role | null> {
    const now = (this.opts.now ?? Date.now)();
    if (username === CONTROL_PLANE_USERNAME) return password === this.opts.controlPlanePassword ? 'control-plane' : null;
    if (!isValidDeviceId(client.id)) return null;
    if (username.startsWith('enroll-')) {
      const token = this.opts.tokens.get(username.slice('enroll-'.length));
      if (!token || tokenUnusableReason(token, now) !== null) return null;
      return (await verifySecret(password, token.secretHash)) ? 'enrollee' : null;
    }
    if (username !== client.id) return null;
    const hash = this.opts.devices.credentialHash(username);
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
    if (role === 'device') return deviceMayPublish(client.id, packet.topic);
    if (role === 'enrollee') return enrolleeMayPublish(client.id, packet.topic);
    return false;
  }

  private maySubscribe(client: Client, sub: Subscription): boolean {
    const role = this.roles.get(client);
    if (role === 'control-plane') return sub.topic.startsWith(`${TOPIC_ROOT}/`);
    if (role === 'device') return deviceMaySubscribe(client.id, sub.topic);
    if (role === 'enrollee') return enrolleeMaySubscribe(client.id, sub.topic);
    return false;
  }

  async init(): Promise<void> {}
  async grantDevice(): Promise<void> {}
  async grantEnrollmentToken(): Promise<void> {}

  async revokeDevice(deviceId: string): Promise<void> {
    this.disconnect(deviceId);
  }

  async revokeEnrollmentToken(): Promise<void> {}

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
    // aedes first: it closes the client sockets, which lets the listener finish closing
    if (aedes) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
