import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { storedDeviceId } from '../../../agent/identity.ts';
import { createLogger, type LogLevel } from '../../log.ts';
import { startControlPlane, type ControlPlane } from '../../server.ts';
import { createStandardRooms } from '../../compose.ts';
import { DEMO_SIZES, isDemoSize, runDemo } from './demo.ts';
import { ApiClient } from '../client.ts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderTable } from '../format.ts';
import { DEFAULT_DATA_DIR } from '../settings.ts';
import { DEVICE_TABLE, type DeviceView } from './devices.ts';

const AGENT_BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'edgefleet-agent.mjs');

type UpOptions = {
  dataDir?: string;
  httpHost: string;
  httpPort: string;
  mqttHost: string;
  mqttPort: string;
  agent: boolean;
  exitAfterReady?: boolean;
  demo?: boolean;
  demoSize: string;
  readyTimeout: string;
  logLevel: string;
  logToTerminal?: boolean;
};

const port = (s: string, flag: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(EXIT.usage, `${flag} "${s}" is not a port (0-65535)`);
  return n;
};

async function waitUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T | null>, alive: () => string | null): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    const dead = alive();
    if (dead) throw new CliError(EXIT.server, `${what}: ${dead}`);
    if (Date.now() > deadline) throw new CliError(EXIT.server, `timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `edgefleet up`: a control plane with its embedded broker and the dashboard, plus one local agent, in one terminal. */
export function registerUpCommand(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('start a control plane (embedded broker, dashboard) and a local agent; Ctrl-C stops both')
    .option('--http-host <host>', 'HTTP listen address', '127.0.0.1')
    .option('--http-port <port>', 'HTTP port (0 picks a free one)', '8080')
    .option('--mqtt-host <host>', 'embedded broker listen address', '127.0.0.1')
    .option('--mqtt-port <port>', 'embedded broker port (0 picks a free one)', '1883')
    .option('--no-agent', 'do not start a local agent')
    .option('--exit-after-ready', 'stop everything once the agent has registered (and the demo ran, with --demo)')
    .option('--demo', 'show the whole loop on the local agent: train a small int8 model, roll it out, print the agent\'s report')
    .option(
      '--demo-size <size>',
      `with --demo: small (${DEMO_SIZES.small.trainSamples} samples, 2+2+1 epochs: 22 s of training on a quiet 2-core EPYC, minutes on a loaded one) or full (${DEMO_SIZES.full.trainSamples} samples, ${DEMO_SIZES.full.teacherEpochs}+${DEMO_SIZES.full.distillEpochs}+${DEMO_SIZES.full.qatEpochs} epochs: about 6x longer, about 8 points more accuracy)`,
      'small',
    )
    .option('--ready-timeout <seconds>', 'how long to wait for the local agent to register', '60')
    .option('--log-level <level>', 'control plane and agent log level', 'warn')
    .option('--log-to-terminal', 'write the control plane\'s and the agent\'s log lines to stderr instead of <data dir>/control-plane.log')
    .addHelpText('after', `\nThe data folder (--data-dir, EDGEFLEET_DATA_DIR, default ${DEFAULT_DATA_DIR}) holds the database, operator-token,\nendpoints.json, control-plane.log and the local agent's state (local-agent/). Other edgefleet commands find the server and token there.`)
    .action(async (o: UpOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals() as { dataDir?: string };
      const dataDir = resolve(ctx.io.cwd, g.dataDir ?? ctx.io.env.EDGEFLEET_DATA_DIR ?? DEFAULT_DATA_DIR);
      if (!['debug', 'info', 'warn', 'error'].includes(o.logLevel)) throw new CliError(EXIT.usage, `--log-level "${o.logLevel}": debug, info, warn or error`);
      const logLevel = o.logLevel as LogLevel;
      if (!isDemoSize(o.demoSize)) throw new CliError(EXIT.usage, `--demo-size "${o.demoSize}": ${Object.keys(DEMO_SIZES).join(' or ')}`);
      const demoSize = o.demoSize;
      const timeoutMs = Math.max(1, Number(o.readyTimeout) || 60) * 1000;
      mkdirSync(dataDir, { recursive: true });
      // JSON log lines interleaved with the demo's progress lines make both unreadable: by default they go to a file
      const logFile = join(dataDir, 'control-plane.log');
      const logStream = o.logToTerminal ? null : createWriteStream(logFile, { flags: 'a', mode: 0o600 });
      const writeLog = (line: string): void => void (logStream ?? ctx.io.stderr).write(line.endsWith('\n') ? line : line + '\n');

      let cp: ControlPlane;
      try {
        cp = await startControlPlane({
          dataDir,
          httpHost: o.httpHost,
          httpPort: port(o.httpPort, '--http-port'),
          broker: { kind: 'embedded', host: o.mqttHost, port: port(o.mqttPort, '--mqtt-port') },
          presenceTimeoutMs: 90_000,
          log: createLogger({ level: logLevel, fields: { service: 'control-plane' }, sink: writeLog }),
          extensions: createStandardRooms({ dataDir }).extensions,
        });
      } catch (e) {
        logStream?.end();
        const msg = (e as Error).message;
        throw new CliError(/EADDRINUSE/.test(msg) ? EXIT.usage : EXIT.server, `control plane did not start: ${msg}${/EADDRINUSE/.test(msg) ? ' (pick another --http-port/--mqtt-port, or 0)' : ''}`);
      }
      const tokenFile = join(dataDir, 'operator-token');
      writeFileSync(tokenFile, cp.ctx.operatorToken + '\n', { mode: 0o600 });
      writeFileSync(join(dataDir, 'endpoints.json'), JSON.stringify({ http: cp.httpUrl, broker: cp.brokerUrl }) + '\n');
      const api = new ApiClient({ server: cp.httpUrl, token: cp.ctx.operatorToken });

      let agent: ChildProcess | null = null;
      let agentExit: string | null = null;
      const stopAll = async (): Promise<void> => {
        if (agent && agent.exitCode === null && agent.signalCode === null) {
          const exited = new Promise((r) => agent!.once('exit', r));
          agent.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
          if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
        }
        await cp.stop();
      };

      try {
        let deviceId: string | null = null;
        if (o.agent) {
          const stateDir = join(dataDir, 'local-agent');
          const before = storedDeviceId(stateDir);
          const birthsBefore = before ? ((await api.get<DeviceView>(`/devices/${before}`).catch(() => null))?.births ?? 0) : 0;
          const args = [AGENT_BIN, 'run', '--broker-url', cp.brokerUrl, '--state-dir', stateDir, '--heartbeat-seconds', '5', '--log-level', logLevel];
          if (!before) {
            const t = await api.post<{ token: string }>('/enrollment-tokens', { label: 'edgefleet up: local agent', expiresInSeconds: 600, maxUses: 1 });
            args.push('--enrollment-token', t.token);
          }
          agent = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
          let agentErr = '';
          agent.stderr!.on('data', (b: Buffer) => {
            agentErr = (agentErr + b.toString()).slice(-2000);
            if (logLevel !== 'warn' && logLevel !== 'error') writeLog(b.toString());
            else for (const line of b.toString().split('\n')) if (/"level":"(warn|error)"/.test(line)) writeLog(line);
          });
          agent.on('exit', (code, signal) => (agentExit = `the local agent exited (${signal ?? `code ${code}`}): ${agentErr.trim().split('\n').slice(-2).join(' ')}`));
          const dev = await waitUntil(
            'the local agent to register',
            timeoutMs,
            async () => {
              const id = storedDeviceId(stateDir);
              if (!id) return null;
              const d = await api.get<DeviceView>(`/devices/${encodeURIComponent(id)}`);
              return d.status === 'online' && d.births > birthsBefore ? d : null;
            },
            () => agentExit,
          );
          deviceId = dev.id;
        }

        const devices = await api.get<{ items: DeviceView[]; total: number }>('/devices?limit=50');
        ctx.print(
          [
            `EdgeFleet is up${deviceId ? ` with local agent ${deviceId}` : ''}`,
            '',
            `  API        ${cp.httpUrl}`,
            `  dashboard  ${cp.httpUrl}/ui/`,
            `  API docs   ${cp.httpUrl}/docs  (${cp.httpUrl}/openapi.json)`,
            `  broker     ${cp.brokerUrl}`,
            `  token      ${tokenFile}`,
            `  data       ${dataDir}`,
            `  logs       ${logStream ? logFile : 'this terminal (stderr)'}`,
            '',
            `fleet (${devices.total} device${devices.total === 1 ? '' : 's'}):`,
          ].join('\n'),
        );
        ctx.io.stdout.write(devices.items.length ? renderTable(devices.items, DEVICE_TABLE) : '(none)\n');
        if (o.demo && deviceId) {
          const demo = await runDemo(api, deviceId, (line) => ctx.print(line), { size: demoSize });
          if (!demo.ok) throw new CliError(EXIT.server, 'the demo did not complete (see above)');
          ctx.print(`\nthe same in the browser: ${cp.httpUrl}/ui/ (token in ${tokenFile})`);
        }
        if (o.exitAfterReady) return;
        ctx.note('\nCtrl-C stops the control plane and the local agent.');
        const why = await Promise.race([ctx.io.interrupted(), new Promise<string>((r) => agent?.once('exit', () => r('agent-exit')))]);
        if (why === 'agent-exit') ctx.note(`edgefleet: ${agentExit ?? 'the local agent exited'}; the control plane keeps running. Ctrl-C to stop.`);
        if (why === 'agent-exit') await ctx.io.interrupted();
        ctx.note('stopping...');
      } finally {
        await stopAll();
        await new Promise<void>((r) => (logStream ? logStream.end(r) : r()));
      }
    });
}
