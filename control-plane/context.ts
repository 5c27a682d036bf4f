import type { DeviceProfile } from '../shared/profile.ts';
import type { BrokerAccess } from './broker/broker-access.ts';
import type { FleetSession } from './fleet/fleet-session.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { Db } from './store/db.ts';
import type { DeviceStore } from './store/devices.ts';
import type { HeartbeatHistory } from './store/heartbeat-history.ts';
import type { SettingsStore, TokenStore } from './store/tokens.ts';

/** Everything a route or a service needs, passed in explicitly. */
export type ControlPlaneContext = {
  db: Db;
  devices: DeviceStore;
  /** A bounded per-device health history (load, memory, temperature) for the dashboard's charts. */
  heartbeats: HeartbeatHistory;
  tokens: TokenStore;
  settings: SettingsStore;
  broker: BrokerAccess;
  fleet: FleetSession;
  profiles: readonly DeviceProfile[];
  metrics: Metrics;
  log: Logger;
  operatorToken: string;
  signingKeys: { publicKeyPem: string; privateKeyPem: string };
  brokerUrl: string;
  version: string;
  now: () => number;
};
