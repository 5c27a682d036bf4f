import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mosquittoConfig } from '../../control-plane/broker/mosquitto-config.ts';
import { hashSecret } from '../../control-plane/store/secrets.ts';

const REPO = join(import.meta.dirname, '..', '..');
const PLUGIN_SOURCE = join(REPO, 'control-plane', 'broker', 'mosquitto-plugin', 'edgefleet_auth.c');

/** EdgeFleet's auth plugin, compiled once per source version (scripts/build-mosquitto-plugin.sh). */
export function buildAuthPlugin(): string {
  const digest = createHash('sha256').update(readFileSync(PLUGIN_SOURCE)).digest('hex').slice(0, 16);
  const out = join(tmpdir(), `edgefleet_auth-${digest}.so`);
  if (existsSync(out)) return out;
  const r = spawnSync('bash', [join(REPO, 'scripts', 'build-mosquitto-plugin.sh'), out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the EdgeFleet Mosquitto plugin failed (needs gcc, mosquitto-dev, libssl-dev): ${r.stderr}`);
  return out;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type Mosquitto = { url: string; port: number; username: string; password: string; dir: string; stop(): Promise<void>; start(): Promise<void>; restart(): Promise<void>; log: () => string };

/**
 * A real Mosquitto on a free loopback port with EdgeFleet's auth plugin and the configuration the
 * README gives (control-plane/broker/mosquitto-config.ts); the control plane logs in as its admin.
 */
export async function startMosquitto(opts: { extraConfig?: string[] } = {}): Promise<Mosquitto> {
  const plugin = buildAuthPlugin();
  const dir = mkdtempSync(join(tmpdir(), 'ef-mosq-'));
  // mosquitto started as root drops to its own user and must still read and write here
  chmodSync(dir, 0o777);
  copyFileSync(plugin, join(dir, 'edgefleet_auth.so'));
  chmodSync(join(dir, 'edgefleet_auth.so'), 0o755);
  const port = await freePort();
  const username = 'edgefleet-control-plane';
  const password = `cp-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    mosquittoConfig({ host: '127.0.0.1', port, pluginPath: join(dir, 'edgefleet_auth.so'), adminUsername: username, adminPasswordHash: hashSecret(password), stateFile: join(dir, 'edgefleet-auth.journal'), persistenceDir: dir }) +
      (opts.extraConfig ?? []).map((l) => `${l}\n`).join(''),
  );
  let proc: ChildProcess | null = null;
  let logText = '';
  const launch = async (): Promise<void> => {
    proc = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (logText += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (logText += d.toString()));
    await waitForPort(port, 10_000);
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    username,
    password,
    dir,
    stop,
    start: launch,
    restart: async () => {
      await stop();
      await launch();
    },
    log: () => logText,
  };
}
