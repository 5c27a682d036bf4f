import mqtt, { type MqttClient } from 'mqtt';
import { randomUUID } from 'node:crypto';
import { TOPIC_ROOT, deviceTopic, enrollRequestTopic, enrollResponseTopic, enrollUsername } from '../../shared/topics.ts';
import type { Logger } from '../log.ts';
import type { BrokerAccess } from './broker-access.ts';

const CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';
const RESPONSE_TOPIC = '$CONTROL/dynamic-security/v1/response';
const ENROLLEE_ROLE = 'edgefleet-enrollee';
const CONTROL_PLANE_ROLE = 'edgefleet-control-plane';
const deviceRole = (id: string): string => `edgefleet-device-${id}`;

type Acl = { acltype: string; topic: string; allow: boolean; priority?: number };
type DynsecCommand = { command: string; [k: string]: unknown };
type DynsecResponse = { command: string; error?: string; correlationData?: string; data?: unknown };

/** ACLs of one device: its own subtree, each channel in the direction the contract gives it. */
export function deviceAcls(deviceId: string): Acl[] {
  const send = (['birth', 'status', 'heartbeat', 'report', 'xfer/req'] as const).map((c) => ({ acltype: 'publishClientSend', topic: deviceTopic(deviceId, c), allow: true }));
  const sub = (['cmd', 'xfer/data'] as const).map((c) => ({ acltype: 'subscribeLiteral', topic: deviceTopic(deviceId, c), allow: true }));
  return [...send, ...sub];
}

/**
 * Drives Mosquitto's dynamic-security plugin over `$CONTROL/dynamic-security/v1`. The control plane
 * logs in with a client that holds the plugin's admin role (created by `mosquitto_ctrl dynsec init`).
 * Mosquitto 2.0.11's plugin does not substitute `%c` in ACL topics (checked: both a publish and a
 * subscribe ACL with `%c` refuse the matching client), so an enrollee may publish to any
 * `enroll/+/req` and hear any `enroll/+/res`. That is safe because the device chooses its own
 * password and the answer carries nothing secret; the control plane checks the token in the payload.
 * The embedded broker holds enrollees to their own id.
 */
export class MosquittoDynsec implements BrokerAccess {
  readonly kind = 'mosquitto' as const;
  private client: MqttClient | null = null;
  private readonly pending = new Map<string, (r: DynsecResponse) => void>();

  constructor(private readonly opts: { url: string; username: string; password: string; log: Logger; timeoutMs?: number }) {}

  async init(): Promise<void> {
    const client = mqtt.connect(this.opts.url, {
      protocolVersion: 4,
      clientId: `edgefleet-dynsec-${randomUUID().slice(0, 8)}`,
      username: this.opts.username,
      password: this.opts.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.client = client;
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', (e) => reject(new Error(`dynamic-security admin login to ${this.opts.url} failed: ${e.message}`)));
    });
    client.on('message', (topic, payload) => {
      if (topic !== RESPONSE_TOPIC) return;
      try {
        const { responses } = JSON.parse(payload.toString('utf8')) as { responses: DynsecResponse[] };
        for (const r of responses) {
          const cb = r.correlationData ? this.pending.get(r.correlationData) : undefined;
          if (cb) {
            this.pending.delete(r.correlationData!);
            cb(r);
          }
        }
      } catch (e) {
        this.opts.log.warn('unreadable dynamic-security response', { error: String(e) });
      }
    });
    await client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    await this.ensureRole(CONTROL_PLANE_ROLE, [
      { acltype: 'publishClientSend', topic: `${TOPIC_ROOT}/#`, allow: true },
      { acltype: 'publishClientReceive', topic: `${TOPIC_ROOT}/#`, allow: true },
      { acltype: 'subscribePattern', topic: `${TOPIC_ROOT}/#`, allow: true },
    ]);
    await this.ensureOwnRole();
    await this.ensureRole(ENROLLEE_ROLE, [
      { acltype: 'publishClientSend', topic: enrollRequestTopic('+'), allow: true },
      { acltype: 'subscribePattern', topic: enrollResponseTopic('+'), allow: true },
    ]);
  }

  /**
   * Gives the control plane's own client the fleet role. Mosquitto disconnects a client whose roles
   * change, so the answer may be lost: wait for the reconnect and read the client back instead.
   */
  private async ensureOwnRole(): Promise<void> {
    const hasRole = async (): Promise<boolean> => {
      const r = await this.run({ command: 'getClient', username: this.opts.username });
      const roles = (r.data as { client?: { roles?: { rolename: string }[] } } | undefined)?.client?.roles ?? [];
      return roles.some((x) => x.rolename === CONTROL_PLANE_ROLE);
    };
    if (await hasRole()) return;
    const client = this.client!;
    const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await client.publishAsync(CONTROL_TOPIC, JSON.stringify({ commands: [{ command: 'addClientRole', username: this.opts.username, rolename: CONTROL_PLANE_ROLE }] }), { qos: 1 });
    await Promise.race([reconnected, new Promise((r) => setTimeout(r, 3000))]);
    if (!client.connected) await reconnected;
    await client.subscribeAsync(RESPONSE_TOPIC, { qos: 1 });
    if (!(await hasRole())) throw new Error(`could not give ${this.opts.username} the ${CONTROL_PLANE_ROLE} role`);
  }

  /**
   * Creates a role, keeping one that exists: deleting a role that a connected client holds makes
   * Mosquitto disconnect that client (our own, for the control-plane role).
   */
  private async ensureRole(rolename: string, acls: Acl[]): Promise<void> {
    await this.run({ command: 'createRole', rolename, acls }, ['already exists']);
  }

  /** Sends one command and waits for its answer; errors containing one of `tolerate` count as success. */
  async run(cmd: DynsecCommand, tolerate: string[] = []): Promise<DynsecResponse> {
    const client = this.client;
    if (!client) throw new Error('dynamic-security session not started');
    const correlationData = randomUUID();
    const response = new Promise<DynsecResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationData);
        reject(new Error(`mosquitto dynamic-security did not answer ${cmd.command} within ${this.opts.timeoutMs ?? 10_000} ms`));
      }, this.opts.timeoutMs ?? 10_000);
      this.pending.set(correlationData, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    await client.publishAsync(CONTROL_TOPIC, JSON.stringify({ commands: [{ ...cmd, correlationData }] }), { qos: 1 });
    const r = await response;
    if (r.error && !tolerate.some((t) => r.error!.toLowerCase().includes(t))) {
      throw new Error(`mosquitto dynamic-security ${cmd.command} failed: ${r.error}`);
    }
    return r;
  }

  async grantDevice(deviceId: string, password: string): Promise<void> {
    await this.run({ command: 'deleteClient', username: deviceId }, ['not found']);
    await this.ensureRole(deviceRole(deviceId), deviceAcls(deviceId));
    await this.run({ command: 'createClient', username: deviceId, clientid: deviceId, password, roles: [{ rolename: deviceRole(deviceId) }] });
  }

  async revokeDevice(deviceId: string): Promise<void> {
    // deleting the client also disconnects it
    await this.run({ command: 'deleteClient', username: deviceId }, ['not found']);
    await this.run({ command: 'deleteRole', rolename: deviceRole(deviceId) }, ['not found']);
  }

  async grantEnrollmentToken(tokenId: string, secret: string): Promise<void> {
    await this.run({ command: 'deleteClient', username: enrollUsername(tokenId) }, ['not found']);
    await this.run({ command: 'createClient', username: enrollUsername(tokenId), password: secret, roles: [{ rolename: ENROLLEE_ROLE }] });
  }

  async revokeEnrollmentToken(tokenId: string): Promise<void> {
    await this.run({ command: 'deleteClient', username: enrollUsername(tokenId) }, ['not found']);
  }

  async close(): Promise<void> {
    for (const cb of this.pending.values()) cb({ command: 'closed', error: 'closed' });
    this.pending.clear();
    await this.client?.endAsync();
    this.client = null;
  }
}
