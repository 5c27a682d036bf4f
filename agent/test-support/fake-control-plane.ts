import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';
import { EnrollRequestSchema, newMsgId, parsePayload, PROTOCOL_VERSION } from '../../shared/messages.ts';
import { generateSigningKeyPair } from '../../shared/signing.ts';
import {
  deviceMayPublish,
  deviceMaySubscribe,
  deviceTopic,
  enrolleeMayPublish,
  enrolleeMaySubscribe,
  enrollResponseTopic,
  parseTopic,
  splitEnrollmentToken,
} from '../../shared/topics.ts';

/**
 * Test double for the control plane: an embedded aedes broker that enforces the contract's topic rules,
 * answers enrollment requests and records what agents publish. Only for agent/ unit tests.
 */
export type Recorded = { topic: string; json: unknown; retain: boolean; at: number };

type Role = { kind: 'enrollee'; tokenId: string } | { kind: 'device' };

export class FakeControlPlane {
  readonly tokens = new Map<string, string>([['tok123abc', 'secretsecretsecret0123']]);
  readonly devices = new Map<string, string>();
  readonly published: Recorded[] = [];
  readonly refusedAuth: string[] = [];
  readonly denied: string[] = [];
  enrollMode: 'accept' | 'reject' | 'silent' = 'accept';
  readonly keys = generateSigningKeyPair();
  private broker!: Aedes;
  private server!: Server;
  private roles = new WeakMap<Client, Role>();
  port = 0;

  get token(): string {
    return 'tok123abc.secretsecretsecret0123';
  }
  get brokerUrl(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    this.broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        const pw = password?.toString() ?? '';
        if (username?.startsWith('enroll-')) {
          const tokenId = username.slice('enroll-'.length);
          if (this.tokens.get(tokenId) === pw) {
            this.roles.set(client, { kind: 'enrollee', tokenId });
            return done(null, true);
          }
        } else if (username && username === client.id && this.devices.get(username) === pw) {
          this.roles.set(client, { kind: 'device' });
          return done(null, true);
        }
        this.refusedAuth.push(username ?? '');
        const err = Object.assign(new Error('Not authorized'), { returnCode: 5 as const });
        done(err, false);
      },
      authorizePublish: (client, packet, cb) => {
        if (!client) return cb(null);
        const role = this.roles.get(client);
        const ok = role?.kind === 'device' ? deviceMayPublish(client.id, packet.topic) : enrolleeMayPublish(client.id, packet.topic);
        if (!ok) this.denied.push(`publish ${client.id} ${packet.topic}`);
        cb(ok ? null : new Error('denied'));
      },
      authorizeSubscribe: (client, sub, cb) => {
        const role = this.roles.get(client);
        const ok = role?.kind === 'device' ? deviceMaySubscribe(client.id, sub.topic) : enrolleeMaySubscribe(client.id, sub.topic);
        if (!ok) this.denied.push(`subscribe ${client.id} ${sub.topic}`);
        cb(ok ? null : new Error('denied'), sub);
      },
    });
    this.broker.on('publish', (packet, client) => {
      if (!client) return;
      let json: unknown = null;
      try {
        json = JSON.parse(packet.payload.toString());
      } catch {
        json = packet.payload.toString();
      }
      this.published.push({ topic: packet.topic, json, retain: packet.retain, at: Date.now() });
      const t = parseTopic(packet.topic);
      if (t?.kind === 'enroll' && t.direction === 'req') this.answerEnrollment(t.deviceId, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
    });
    this.server = createServer(this.broker.handle);
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private answerEnrollment(deviceId: string, payload: Buffer): void {
    const parsed = parsePayload(EnrollRequestSchema, payload);
    if (!parsed.ok || this.enrollMode === 'silent') return;
    const tok = splitEnrollmentToken(parsed.value.token);
    const answer =
      this.enrollMode === 'reject' || !tok || this.tokens.get(tok.tokenId) !== tok.secret
        ? { v: PROTOCOL_VERSION, ok: false, error: 'token used up' }
        : { v: PROTOCOL_VERSION, ok: true, deviceId, signingPublicKey: this.keys.publicKeyPem };
    if (answer.ok) this.devices.set(deviceId, parsed.value.password);
    this.broker.publish({ cmd: 'publish', topic: enrollResponseTopic(deviceId), payload: Buffer.from(JSON.stringify(answer)), qos: 1, retain: false, dup: false }, () => {});
  }

  sendCommand(deviceId: string, body: Record<string, unknown> | string): void {
    const payload = typeof body === 'string' ? body : JSON.stringify({ v: PROTOCOL_VERSION, msgId: newMsgId(), ts: Date.now(), ...body });
    this.broker.publish({ cmd: 'publish', topic: deviceTopic(deviceId, 'cmd'), payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, () => {});
  }

  messages(deviceId: string, channel: Parameters<typeof deviceTopic>[1]): Recorded[] {
    const topic = deviceTopic(deviceId, channel);
    return this.published.filter((m) => m.topic === topic);
  }

  async waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Closes the listener and every connection; the broker state (credentials, records) is kept for `start(port)`. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
