/**
 * Prepares a Mosquitto for EdgeFleet: builds the auth plugin, creates the control plane's broker
 * password (kept 0600, never overwritten) and writes mosquitto.conf (control-plane/broker/mosquitto-config.ts).
 *
 *   node --import tsx control-plane/broker/mosquitto-plugin/setup.ts --dir /etc/mosquitto/edgefleet \
 *     [--host 0.0.0.0] [--port 1883] [--state-dir /var/lib/mosquitto] [--max-connections 20000]
 *
 * Then: mosquitto -c DIR/mosquitto.conf, and start the control plane with EDGEFLEET_BROKER=mqtt://HOST:PORT
 * EDGEFLEET_MQTT_PASSWORD="$(cat DIR/control-plane.password)".
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { hashSecret } from '../../store/secrets.ts';
import { mosquittoConfig } from '../mosquitto-config.ts';

export type SetupResult = { configPath: string; pluginPath: string; passwordPath: string; password: string };

export function setupMosquitto(o: { dir: string; host: string; port: number; stateDir: string; maxConnections?: number; username?: string }): SetupResult {
  mkdirSync(o.dir, { recursive: true, mode: 0o755 });
  const pluginPath = join(o.dir, 'edgefleet_auth.so');
  const build = spawnSync('bash', [join(import.meta.dirname, '..', '..', '..', 'scripts', 'build-mosquitto-plugin.sh'), pluginPath], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building the plugin failed (needs gcc, mosquitto-dev, libssl-dev): ${build.stderr}`);
  const passwordPath = join(o.dir, 'control-plane.password');
  if (!existsSync(passwordPath)) writeFileSync(passwordPath, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  chmodSync(passwordPath, 0o600);
  const password = readFileSync(passwordPath, 'utf8').trim();
  const configPath = join(o.dir, 'mosquitto.conf');
  const text = mosquittoConfig({
    host: o.host,
    port: o.port,
    pluginPath,
    adminUsername: o.username ?? 'edgefleet-control-plane',
    adminPasswordHash: hashSecret(password),
    stateFile: join(o.stateDir, 'edgefleet-auth.journal'),
    persistenceDir: o.stateDir,
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
  });
  // the config holds only a salted hash of the password, but nobody else needs to read it
  writeFileSync(configPath, text, { mode: 0o640 });
  return { configPath, pluginPath, passwordPath, password };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values } = parseArgs({
    options: { dir: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '1883' }, 'state-dir': { type: 'string' }, 'max-connections': { type: 'string' } },
  });
  if (!values.dir) {
    console.error('usage: setup.ts --dir DIR [--host H] [--port P] [--state-dir DIR] [--max-connections N]');
    process.exit(2);
  }
  const r = setupMosquitto({
    dir: resolve(values.dir),
    host: values.host!,
    port: Number(values.port),
    stateDir: resolve(values['state-dir'] ?? values.dir),
    ...(values['max-connections'] ? { maxConnections: Number(values['max-connections']) } : {}),
  });
  console.log(`wrote ${r.configPath} and ${r.pluginPath}; the control plane's broker password is in ${r.passwordPath}
start:  mosquitto -c ${r.configPath}
then:   EDGEFLEET_BROKER=mqtt://${values.host}:${values.port} EDGEFLEET_MQTT_PASSWORD="$(cat ${r.passwordPath})" node bin/edgefleet-control-plane.mjs`);
}
