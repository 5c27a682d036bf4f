import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createStandardRooms } from './compose.ts';
import { CONFIG_HELP, parseConfig } from './config.ts';
import { createLogger } from './log.ts';
import { ConfigError, startControlPlane } from './server.ts';

const parsed = parseConfig(process.argv.slice(2), process.env);
if (!parsed.ok) {
  process.stderr.write(`${parsed.error}\n\n${CONFIG_HELP}`);
  process.exit(2);
}
if (parsed.value.help) {
  process.stdout.write(CONFIG_HELP);
  process.exit(0);
}
const log = createLogger({ level: parsed.value.logLevel, fields: { service: 'control-plane' } });
try {
  const rooms = createStandardRooms({ dataDir: parsed.value.options.dataDir });
  const cp = await startControlPlane({ ...parsed.value.options, log, extensions: rooms.extensions });
  mkdirSync(parsed.value.options.dataDir, { recursive: true });
  // where the CLI and the quick start find the token without it appearing in logs
  writeFileSync(join(parsed.value.options.dataDir, 'operator-token'), cp.ctx.operatorToken + '\n', { mode: 0o600 });
  writeFileSync(join(parsed.value.options.dataDir, 'endpoints.json'), JSON.stringify({ http: cp.httpUrl, broker: cp.brokerUrl }) + '\n');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    cp.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  log.error('control plane failed to start', { error: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}
