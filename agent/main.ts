import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadProfilesFromDir } from '../device-profiles/load.ts';
import { failedRules, matchProfile } from '../shared/matcher.ts';
import { AgentConfigError, startAgent, type AgentHandle } from './agent.ts';
import { EnrollmentError } from './enroll.ts';
import { applyFactsOverride, loadFactsOverrideFile, type FactsOverride } from './facts-override.ts';
import { storedDeviceId } from './identity.ts';
import { createLogger, errorMessage, type LogLevel } from './log.ts';
import { probeFacts } from './probe.ts';
import { AGENT_VERSION } from './version.ts';

/** Exit codes: 0 stopped cleanly, 1 unexpected failure, 2 enrollment refused (bad/rejected token, control plane said no), 64 bad usage or configuration. */
const EXIT_FAILURE = 1;
const EXIT_ENROLLMENT_REFUSED = 2;
const EXIT_USAGE = 64;

const HELP = `edgefleet-agent ${AGENT_VERSION}: the EdgeFleet on-device agent

Usage:
  edgefleet-agent [run] [options]   enroll on first start, then keep an MQTT session with the control plane
  edgefleet-agent probe [options]   print this machine's facts and the built-in profile they match, as JSON

Options (each also read from the environment variable shown):
  --broker-url URL          EDGEFLEET_BROKER_URL         mqtt://host:1883 (stored at enrollment; optional afterwards)
  --state-dir DIR           EDGEFLEET_STATE_DIR          identity and device id (default ~/.edgefleet/agent)
  --enrollment-token TOKEN  EDGEFLEET_ENROLLMENT_TOKEN   <tokenId>.<secret>, needed on first start only
  --device-id ID            EDGEFLEET_DEVICE_ID          default: generated once and kept in the state dir
  --profile ID              EDGEFLEET_PROFILE            profile to claim in the birth (the operator's override still wins)
  --facts FILE              EDGEFLEET_FACTS_FILE         JSON partial facts deep-merged over the probed facts
  --heartbeat-seconds N     EDGEFLEET_HEARTBEAT_SECONDS  default 30
  --profiles-dir DIR        EDGEFLEET_PROFILES_DIR       (probe) profiles to match against (default: built-in)
  --log-level LEVEL         EDGEFLEET_LOG_LEVEL          debug | info | warn | error (default info)
  -h, --help

Exit codes: 0 stopped, 1 failure, 2 enrollment refused, 64 bad usage or configuration.
SIGTERM/SIGINT stop gracefully (retained "offline" status); a killed agent leaves the broker to send its will.
`;

class UsageError extends Error {}

function parseCli(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'broker-url': { type: 'string' },
      'state-dir': { type: 'string' },
      'enrollment-token': { type: 'string' },
      'device-id': { type: 'string' },
      profile: { type: 'string' },
      facts: { type: 'string' },
      'heartbeat-seconds': { type: 'string' },
      'profiles-dir': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const env = process.env;
  const pick = (flag: keyof typeof values, envName: string): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' && v !== '' ? v : env[envName] || undefined;
  };
  const command = positionals[0] ?? 'run';
  if (!['run', 'probe'].includes(command) || positionals.length > 1) throw new UsageError(`unknown command "${positionals.join(' ')}" (expected run or probe)`);
  const hb = pick('heartbeat-seconds', 'EDGEFLEET_HEARTBEAT_SECONDS');
  const heartbeatSeconds = hb === undefined ? 30 : Number(hb);
  if (!Number.isFinite(heartbeatSeconds) || heartbeatSeconds < 0.1 || heartbeatSeconds > 86_400) {
    throw new UsageError(`--heartbeat-seconds: "${hb}" is not a number of seconds between 0.1 and 86400`);
  }
  const logLevel = pick('log-level', 'EDGEFLEET_LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new UsageError(`--log-level: "${logLevel}" is not one of debug, info, warn, error`);
  return {
    command: command as 'run' | 'probe',
    help: values.help === true,
    brokerUrl: pick('broker-url', 'EDGEFLEET_BROKER_URL'),
    stateDir: pick('state-dir', 'EDGEFLEET_STATE_DIR') ?? join(homedir(), '.edgefleet', 'agent'),
    enrollmentToken: pick('enrollment-token', 'EDGEFLEET_ENROLLMENT_TOKEN'),
    deviceId: pick('device-id', 'EDGEFLEET_DEVICE_ID'),
    profile: pick('profile', 'EDGEFLEET_PROFILE'),
    factsFile: pick('facts', 'EDGEFLEET_FACTS_FILE'),
    profilesDir: pick('profiles-dir', 'EDGEFLEET_PROFILES_DIR'),
    heartbeatSeconds,
    logLevel: logLevel as LogLevel,
  };
}

function readOverride(file: string | undefined): FactsOverride | undefined {
  if (!file) return undefined;
  const loaded = loadFactsOverrideFile(file);
  if (!loaded.ok) throw new AgentConfigError(loaded.error);
  return loaded.value;
}

async function runProbe(cli: ReturnType<typeof parseCli>): Promise<number> {
  const { facts: probed, warnings } = await probeFacts();
  let facts = probed;
  const override = readOverride(cli.factsFile);
  if (override && cli.factsFile) {
    const merged = applyFactsOverride(probed, override, cli.factsFile);
    if (!merged.ok) throw new AgentConfigError(merged.error);
    facts = merged.value;
  }
  const profiles = loadProfilesFromDir(...(cli.profilesDir ? [cli.profilesDir] : []));
  const out = profiles.ok
    ? {
        facts,
        profile: matchProfile(facts, profiles.value, cli.profile ?? null),
        candidates: profiles.value.map((p) => ({ id: p.id, priority: p.priority, failedRules: failedRules(p.match, facts) })),
        warnings,
      }
    : { facts, profile: null, profileErrors: profiles.error, warnings };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return profiles.ok ? 0 : EXIT_USAGE;
}

async function runAgent(cli: ReturnType<typeof parseCli>): Promise<number> {
  const logger = createLogger({ level: cli.logLevel });
  const abort = new AbortController();
  let handle: AgentHandle | null = null;
  let stopping: Promise<void> | null = null;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((r) => (resolveDone = r));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    const deviceId = handle?.deviceId ?? storedDeviceId(cli.stateDir);
    logger.info('signal received, stopping', { signal, ...(deviceId ? { deviceId } : {}) });
    abort.abort();
    stopping = (handle ? handle.stop({ graceful: true }) : Promise.resolve()).finally(() => resolveDone(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  handle = await startAgent({
    brokerUrl: cli.brokerUrl,
    stateDir: cli.stateDir,
    enrollmentToken: cli.enrollmentToken ?? null,
    deviceId: cli.deviceId ?? null,
    profileHint: cli.profile ?? null,
    factsOverride: readOverride(cli.factsFile),
    factsOverrideSource: cli.factsFile,
    heartbeatIntervalMs: Math.round(cli.heartbeatSeconds * 1000),
    logger,
    signal: abort.signal,
    // the CLI agent is the full one: delivery with the benchmark command too
    delivery: {},
  });
  if (abort.signal.aborted) {
    await handle.stop({ graceful: true });
    return 0;
  }
  return done;
}

export async function main(argv: string[]): Promise<number> {
  let cli: ReturnType<typeof parseCli>;
  try {
    cli = parseCli(argv);
  } catch (e) {
    process.stderr.write(`edgefleet-agent: ${errorMessage(e)}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (cli.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    return cli.command === 'probe' ? await runProbe(cli) : await runAgent(cli);
  } catch (e) {
    const deviceId = cli.deviceId ?? (cli.command === 'run' ? storedDeviceId(cli.stateDir) : null);
    const log = createLogger({ level: cli.logLevel, fields: deviceId ? { deviceId } : {} });
    if (e instanceof EnrollmentError) {
      if (e.kind === 'aborted') {
        log.info(e.message, { kind: e.kind });
        return 0;
      }
      log.error(e.message, { kind: e.kind });
      return e.kind === 'timeout' || e.kind === 'unreachable' ? EXIT_FAILURE : EXIT_ENROLLMENT_REFUSED;
    }
    if (e instanceof AgentConfigError) {
      log.error(e.message);
      return EXIT_USAGE;
    }
    log.error('agent failed', { error: errorMessage(e), stack: (e as Error).stack });
    return EXIT_FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
// MQTT sockets and timers are closed by now; exit anyway so a stray handle cannot keep a stopped agent alive
process.exit();
