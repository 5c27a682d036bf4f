import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DYNSEC_PLUGIN_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
];

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

export type Mosquitto = { url: string; port: number; username: string; password: string; stop(): Promise<void>; restart(): Promise<void>; log: () => string };

/**
 * A real Mosquitto on a free loopback port with the dynamic-security plugin, initialised with an
 * admin client for the control plane (what `mosquitto_ctrl dynsec init` does in production).
 */
export async function startMosquitto(): Promise<Mosquitto> {
  const plugin = DYNSEC_PLUGIN_CANDIDATES.find((p) => existsSync(p));
  if (!plugin) throw new Error('mosquitto dynamic-security plugin not found; install Debian package "mosquitto"');
  const dir = mkdtempSync(join(tmpdir(), 'ef-mosq-'));
  // mosquitto started as root drops to its own user and must still read and write here
  chmodSync(dir, 0o777);
  const port = await freePort();
  const username = 'edgefleet-control-plane';
  const password = `cp-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const init = spawnSync('mosquitto_ctrl', ['dynsec', 'init', join(dir, 'dynsec.json'), username, password], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`mosquitto_ctrl dynsec init failed: ${init.stderr}`);
  chmodSync(join(dir, 'dynsec.json'), 0o666);
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `plugin ${plugin}`,
      `plugin_opt_config_file ${join(dir, 'dynsec.json')}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 1000',
      'log_type error',
      'log_type warning',
      'log_type notice',
      '',
    ].join('\n'),
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
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    log: () => logText,
  };
}
