import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import { PrivateDirError, securePrivateDir, touchPrivate } from '../shared/private-dir.ts';
import type { BrokerAccess } from './broker/broker-access.ts';
import { EmbeddedBroker } from './broker/embedded-broker.ts';
import { MosquittoAuth } from './broker/mosquitto-auth.ts';
import { loginSnapshot } from './broker/store-snapshot.ts';
import type { ControlPlaneContext } from './context.ts';
import { FleetSession, type FleetSessionOptions } from './fleet/fleet-session.ts';
import { DEFAULT_WILL_HOLD_MS, PresenceWriter } from './fleet/presence-writer.ts';
import { createHttpApp } from './http/app.ts';
import type { RouteTable } from './http/route-table.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { migrateRoom, openDatabase } from './store/db.ts';
import { DeviceStore } from './store/devices.ts';
import { HEARTBEAT_HISTORY_MIGRATIONS, HeartbeatHistory, type HeartbeatHistoryOptions } from './store/heartbeat-history.ts';
import { loadOperatorToken, loadSigningKeys } from './store/secret-files.ts';
import { randomToken } from './store/secrets.ts';
import { SettingsStore, TokenStore } from './store/tokens.ts';

export const CONTROL_PLANE_VERSION = '0.1.0';

export type BrokerConfig =
  | { kind: 'embedded'; host: string; port: number; /** MQTT connection cap (default: the open-file limit less a reserve) */ maxConnections?: number }
  | { kind: 'mosquitto'; url: string; username: string; password: string; /** how long a grant waits for the broker before it is refused (503); default 15 s */ grantTimeoutMs?: number };

export type ControlPlaneOptions = {
  dataDir: string;
  dbPath?: string;
  httpHost: string;
  httpPort: number;
  broker: BrokerConfig;
  /** Fixed operator token; when absent one is generated on first start and kept in the database. */
  operatorToken?: string;
  profilesDir?: string;
  /** A device not heard from for this long is marked offline (missed heartbeats). */
  presenceTimeoutMs: number;
  /** How long a will of a connection never heard coming online is held (PresenceWriterOptions.holdMs); default min(45 s, presenceTimeoutMs / 2). */
  willHoldMs?: number;
  presenceSweepMs?: number;
  log?: Logger;
  now?: () => number;
  /** The per-device health history behind the dashboard's charts (bucket length, points kept). */
  heartbeatHistory?: HeartbeatHistoryOptions;
  /** Route groups and MQTT hooks added by later rooms (delivery, rollouts, training, UI). */
  extensions?: ControlPlaneExtension[];
};

export type ControlPlaneExtension = {
  /** The room's own schema migrations, applied at start (see migrateRoom). */
  migrations?: { room: string; list: readonly string[] };
  routes?: (table: RouteTable, ctx: ControlPlaneContext) => void;
  hooks?: (ctx: ControlPlaneContext) => Pick<FleetSessionOptions, 'onReport' | 'onXferRequest' | 'onBirth'>;
  start?: (ctx: ControlPlaneContext) => Promise<void> | void;
  stop?: () => Promise<void> | void;
};

export type ControlPlane = {
  ctx: ControlPlaneContext;
  httpUrl: string;
  brokerUrl: string;
  stop(): Promise<void>;
};

export class ConfigError extends Error {}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? createLogger();
  const now = opts.now ?? Date.now;
  const loaded = loadProfilesFromDir(opts.profilesDir);
  if (!loaded.ok) throw new ConfigError(`device profiles are invalid:\n  ${loaded.error.join('\n  ')}`);
  const profiles = loaded.value;

  // the data folder holds the database, the signing key and the operator token: owner only (issue 8 item 4)
  try {
    const fixed = securePrivateDir(opts.dataDir);
    if (fixed.fixedDir || fixed.fixedEntries.length) {
      log.warn('data folder was readable by other users; fixed to 0700 (files 0600)', { dataDir: opts.dataDir, fixedDir: fixed.fixedDir, fixedFiles: fixed.fixedEntries.length, examples: fixed.fixedEntries.slice(0, 5) });
    }
  } catch (e) {
    if (e instanceof PrivateDirError) throw new ConfigError(`data folder: ${e.message}`);
    throw e;
  }
  const dbPath = opts.dbPath ?? join(opts.dataDir, 'edgefleet.db');
  if (dbPath !== ':memory:') touchPrivate(dbPath);
  const db = openDatabase(dbPath);
  for (const e of opts.extensions ?? []) if (e.migrations) migrateRoom(db, e.migrations.room, e.migrations.list);
  const devices = new DeviceStore(db);
  migrateRoom(db, 'heartbeat-history', HEARTBEAT_HISTORY_MIGRATIONS);
  const heartbeats = new HeartbeatHistory(db, opts.heartbeatHistory);
  const tokens = new TokenStore(db);
  const settings = new SettingsStore(db);
  const metrics = new Metrics();
  const deviceCounts = (column: 'status' | 'profile_id' | 'agent_version', label: string) => () =>
    devices.countsBy(column).map((r) => ({ labels: { [label]: r.key ?? 'none' }, value: r.n }));
  metrics.gauge('edgefleet_devices', 'Devices by status', deviceCounts('status', 'status'));
  metrics.gauge('edgefleet_devices_by_profile', 'Devices by profile', deviceCounts('profile_id', 'profile'));
  metrics.gauge('edgefleet_devices_by_agent_version', 'Devices by agent version', deviceCounts('agent_version', 'version'));

  const signingKeys = loadSigningKeys(opts.dataDir, db, settings, log);
  const operatorToken = await loadOperatorToken(opts.dataDir, db, settings, opts.operatorToken, log);

  const cleanups: (() => Promise<void> | void)[] = [
    () => {
      db.close();
    },
    // runs before the close above (cleanups run in reverse): pending health points are written
    () => heartbeats.flush(),
  ];
  const stopAll = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log.warn('error while stopping', { error: String(e) });
      }
    }
    cleanups.length = 0;
  };

  try {
    let broker: BrokerAccess;
    let brokerUrl: string;
    let cpUser: string | undefined;
    let cpPassword: string;
    if (opts.broker.kind === 'embedded') {
      cpPassword = randomToken(24);
      const embedded = new EmbeddedBroker({ host: opts.broker.host, port: opts.broker.port, controlPlanePassword: cpPassword, devices, tokens, metrics, log: log.child({ room: 'broker' }), now, ...(opts.broker.maxConnections !== undefined ? { maxConnections: opts.broker.maxConnections } : {}) });
      brokerUrl = await embedded.start();
      broker = embedded;
    } else {
      brokerUrl = opts.broker.url;
      cpUser = opts.broker.username;
      cpPassword = opts.broker.password;
      broker = new MosquittoAuth({ url: brokerUrl, username: cpUser, password: cpPassword, log: log.child({ room: 'broker' }), metrics, snapshot: () => loginSnapshot(db, now()), ...(opts.broker.grantTimeoutMs ? { grantTimeoutMs: opts.broker.grantTimeoutMs } : {}) });
    }
    cleanups.push(() => broker.close());
    await broker.init();

    const fleetLog = log.child({ room: 'fleet' });
    const presence = new PresenceWriter(devices, {
      // the dashboard's health history: its once-a-minute point per device rides in the same transaction
      inBatch: (op) => void heartbeats.recordNow(op.deviceId, op.heartbeat, op.at),
      onChanged: (c) => fleetLog.info('device presence', { deviceId: c.deviceId, state: c.status, reason: c.reason }),
      onError: (e) => fleetLog.error('birth hook failed', { error: String(e) }),
      holdMs: opts.willHoldMs ?? Math.min(DEFAULT_WILL_HOLD_MS, opts.presenceTimeoutMs / 2),
      onHold: (deviceId, outcome) => {
        metrics.inc('edgefleet_presence_held_wills_total', 'Wills of connections never heard coming online: held, then written or dropped (the device came back)', { outcome });
        if (outcome !== 'held') fleetLog.info('held will', { deviceId, outcome });
      },
      onFlushed: (ops) => {
        metrics.inc('edgefleet_presence_batches_total', 'SQLite transactions that wrote heartbeats and presence changes');
        metrics.inc('edgefleet_presence_writes_total', 'heartbeats and presence changes written, in batches', {}, ops);
      },
    });
    // written out before the database closes (cleanups run in reverse)
    cleanups.push(() => presence.stop());
    const ctx = { db, devices, heartbeats, tokens, settings, broker, profiles, metrics, log, operatorToken, signingKeys, brokerUrl, version: CONTROL_PLANE_VERSION, now } as Omit<ControlPlaneContext, 'fleet'> as ControlPlaneContext;
    const hooks = (opts.extensions ?? []).map((e) => e.hooks?.(ctx) ?? {});
    const fleet = new FleetSession({
      brokerUrl,
      password: cpPassword,
      ...(cpUser ? { username: cpUser } : {}),
      devices,
      presence,
      tokens,
      broker,
      profiles: () => profiles,
      signingPublicKey: signingKeys.publicKeyPem,
      metrics,
      log: fleetLog,
      now,
      onReport: (id, r) => hooks.forEach((h) => h.onReport?.(id, r)),
      onXferRequest: (id, r) => hooks.forEach((h) => h.onXferRequest?.(id, r)),
      onBirth: (id) => hooks.forEach((h) => h.onBirth?.(id)),
    });
    ctx.fleet = fleet;
    await fleet.start();
    cleanups.push(() => fleet.stop());

    // Silence is only evidence after a full timeout of listening: while this process was down nobody
    // heard the heartbeats, so right after a (re)start a device's old last-seen says nothing about it.
    const listeningSince = now();
    const sweep = setInterval(() => {
      const t = now();
      if (t - listeningSince < opts.presenceTimeoutMs) return;
      presence.sweep(t - opts.presenceTimeoutMs, t);
    }, opts.presenceSweepMs ?? Math.max(250, Math.min(5000, opts.presenceTimeoutMs / 4)));
    sweep.unref();
    cleanups.push(() => clearInterval(sweep));

    for (const e of opts.extensions ?? []) {
      await e.start?.(ctx);
      if (e.stop) cleanups.push(e.stop);
    }

    const { app } = createHttpApp(
      ctx,
      (opts.extensions ?? []).flatMap((e) => (e.routes ? [e.routes] : [])),
    );
    const server: ServerType = await new Promise((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: opts.httpHost, port: opts.httpPort }, () => resolve(s));
      s.once('error', reject);
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    const addr = server.address() as AddressInfo;
    const httpUrl = `http://${opts.httpHost.includes(':') ? `[${opts.httpHost}]` : opts.httpHost}:${addr.port}`;
    log.info('control plane up', { http: httpUrl, broker: brokerUrl, brokerKind: broker.kind, profiles: profiles.map((p) => p.id) });
    return { ctx, httpUrl, brokerUrl, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
