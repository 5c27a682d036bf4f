import { MAX_MQTT_PACKET_BYTES } from '../../shared/transfer.ts';

export type MosquittoConfigOptions = {
  host: string;
  port: number;
  /** The compiled plugin (scripts/build-mosquitto-plugin.sh). */
  pluginPath: string;
  adminUsername: string;
  /** hashSecret() of the control plane's password (store/secrets.ts format). */
  adminPasswordHash: string;
  /** The plugin's journal of logins and grants; Mosquitto's user must be able to write it. */
  stateFile: string;
  persistenceDir: string;
  /** Concurrent connections the listener accepts (-1: no limit). */
  maxConnections?: number;
  logTypes?: string[];
};

/**
 * The Mosquitto configuration EdgeFleet runs with (the tests, the setup script and the README use
 * this one text):
 * - EdgeFleet's auth plugin is the only authority: no anonymous logins, no password or ACL file;
 * - `max_packet_size` from the transfer chunk size: anything bigger closes the connection;
 * - `max_queued_messages 1000` bounds each device's queue, while the control plane's own client asks
 *   for a large MQTT 5 receive maximum, so its in-flight window (not the queue) absorbs bursts such as
 *   thousands of wills at once (in 2.0.11 the queue limit is global, the receive maximum per client);
 * - `set_tcp_nodelay true` (Mosquitto 2.0+): small packets (requests, PUBACKs, reports) go out at once instead of
 *   waiting behind an unacknowledged one for the peer's delayed ACK (up to 40 ms on Linux).
 */
export function mosquittoConfig(o: MosquittoConfigOptions): string {
  return [
    'per_listener_settings false',
    `listener ${o.port} ${o.host}`,
    `max_connections ${o.maxConnections ?? -1}`,
    'allow_anonymous false',
    `plugin ${o.pluginPath}`,
    `plugin_opt_admin_username ${o.adminUsername}`,
    `plugin_opt_admin_password_hash ${o.adminPasswordHash}`,
    `plugin_opt_state_file ${o.stateFile}`,
    `max_packet_size ${MAX_MQTT_PACKET_BYTES}`,
    'max_queued_messages 1000',
    // Nagle off on client sockets, as the embedded broker and EdgeFleet's MQTT clients do (shared/mqtt-nodelay.ts)
    'set_tcp_nodelay true',
    'persistence true',
    `persistence_location ${o.persistenceDir.endsWith('/') ? o.persistenceDir : `${o.persistenceDir}/`}`,
    ...(o.logTypes ?? ['error', 'warning', 'notice']).map((t) => `log_type ${t}`),
    '',
  ].join('\n');
}
