import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatZodError } from '../shared/messages.ts';
import type { ControlPlaneOptions } from './server.ts';
import type { Result } from '../shared/result.ts';

/** Every setting has an env var and a flag; flags win. */
const EnvSchema = z.object({
  EDGEFLEET_DATA_DIR: z.string().min(1).default('.edgefleet/control-plane'),
  EDGEFLEET_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  EDGEFLEET_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  EDGEFLEET_BROKER: z
    .string()
    .regex(/^(embedded|mqtts?:\/\/.+)$/, 'must be "embedded" or an mqtt:// URL')
    .default('embedded'),
  EDGEFLEET_MQTT_HOST: z.string().min(1).default('127.0.0.1'),
  EDGEFLEET_MQTT_PORT: z.coerce.number().int().min(0).max(65535).default(1883),
  EDGEFLEET_MAX_CONNECTIONS: z.coerce.number().int().min(2).max(10_000_000).optional(),
  EDGEFLEET_MQTT_USERNAME: z.string().min(1).default('edgefleet-control-plane'),
  EDGEFLEET_MQTT_PASSWORD: z.string().optional(),
  EDGEFLEET_OPERATOR_TOKEN: z.string().min(16, 'operator tokens are at least 16 characters').optional(),
  EDGEFLEET_PROFILES_DIR: z.string().min(1).optional(),
  EDGEFLEET_PRESENCE_TIMEOUT_S: z.coerce.number().positive().default(90),
  EDGEFLEET_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export const CONFIG_HELP = `edgefleet-control-plane [flags]

  --data-dir DIR          EDGEFLEET_DATA_DIR          SQLite file, keys, artifacts (.edgefleet/control-plane)
  --http-host HOST        EDGEFLEET_HTTP_HOST         HTTP listen address (127.0.0.1)
  --http-port PORT        EDGEFLEET_HTTP_PORT         HTTP port (8080; 0 picks a free one)
  --broker embedded|URL   EDGEFLEET_BROKER            embedded aedes broker, or an external broker's mqtt:// URL
  --mqtt-host HOST        EDGEFLEET_MQTT_HOST         embedded broker listen address (127.0.0.1)
  --mqtt-port PORT        EDGEFLEET_MQTT_PORT         embedded broker port (1883)
  --max-connections N     EDGEFLEET_MAX_CONNECTIONS   embedded broker: at most N MQTT connections (open-file limit - 512)
  --mqtt-username NAME    EDGEFLEET_MQTT_USERNAME     external broker: the EdgeFleet auth plugin's admin login (edgefleet-control-plane)
  --mqtt-password PW      EDGEFLEET_MQTT_PASSWORD     external broker: its password
  --operator-token TOKEN  EDGEFLEET_OPERATOR_TOKEN    API bearer token (generated on first start if unset)
  --profiles-dir DIR      EDGEFLEET_PROFILES_DIR      device profile JSON files (built-in device-profiles/)
  --presence-timeout S    EDGEFLEET_PRESENCE_TIMEOUT_S  offline after S seconds without a heartbeat (90)
  --log-level LEVEL       EDGEFLEET_LOG_LEVEL         debug|info|warn|error (info)
`;

const FLAG_TO_ENV: Record<string, keyof z.input<typeof EnvSchema>> = {
  'data-dir': 'EDGEFLEET_DATA_DIR',
  'http-host': 'EDGEFLEET_HTTP_HOST',
  'http-port': 'EDGEFLEET_HTTP_PORT',
  broker: 'EDGEFLEET_BROKER',
  'mqtt-host': 'EDGEFLEET_MQTT_HOST',
  'mqtt-port': 'EDGEFLEET_MQTT_PORT',
  'max-connections': 'EDGEFLEET_MAX_CONNECTIONS',
  'mqtt-username': 'EDGEFLEET_MQTT_USERNAME',
  'mqtt-password': 'EDGEFLEET_MQTT_PASSWORD',
  'operator-token': 'EDGEFLEET_OPERATOR_TOKEN',
  'profiles-dir': 'EDGEFLEET_PROFILES_DIR',
  'presence-timeout': 'EDGEFLEET_PRESENCE_TIMEOUT_S',
  'log-level': 'EDGEFLEET_LOG_LEVEL',
};

export type ParsedConfig = Result<{ options: Omit<ControlPlaneOptions, 'log'>; logLevel: 'debug' | 'info' | 'warn' | 'error'; help: boolean }>;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): ParsedConfig {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...Object.fromEntries(Object.keys(FLAG_TO_ENV).map((k) => [k, { type: 'string' as const }])) },
      strict: true,
    }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const merged: Record<string, string | undefined> = {};
  for (const key of Object.values(FLAG_TO_ENV)) merged[key] = env[key];
  for (const [flag, key] of Object.entries(FLAG_TO_ENV)) if (typeof flags[flag] === 'string') merged[key] = flags[flag] as string;
  for (const k of Object.keys(merged)) if (merged[k] === '') delete merged[k];
  const parsed = EnvSchema.safeParse(merged);
  if (!parsed.success) return { ok: false, error: `bad configuration: ${formatZodError(parsed.error)}` };
  const c = parsed.data;
  if (c.EDGEFLEET_BROKER !== 'embedded' && !c.EDGEFLEET_MQTT_PASSWORD) {
    return { ok: false, error: 'bad configuration: EDGEFLEET_MQTT_PASSWORD (--mqtt-password) is required with an external broker' };
  }
  const options: Omit<ControlPlaneOptions, 'log'> = {
    dataDir: c.EDGEFLEET_DATA_DIR,
    httpHost: c.EDGEFLEET_HTTP_HOST,
    httpPort: c.EDGEFLEET_HTTP_PORT,
    broker:
      c.EDGEFLEET_BROKER === 'embedded'
        ? { kind: 'embedded', host: c.EDGEFLEET_MQTT_HOST, port: c.EDGEFLEET_MQTT_PORT, ...(c.EDGEFLEET_MAX_CONNECTIONS !== undefined ? { maxConnections: c.EDGEFLEET_MAX_CONNECTIONS } : {}) }
        : { kind: 'mosquitto', url: c.EDGEFLEET_BROKER, username: c.EDGEFLEET_MQTT_USERNAME, password: c.EDGEFLEET_MQTT_PASSWORD! },
    presenceTimeoutMs: c.EDGEFLEET_PRESENCE_TIMEOUT_S * 1000,
    ...(c.EDGEFLEET_OPERATOR_TOKEN ? { operatorToken: c.EDGEFLEET_OPERATOR_TOKEN } : {}),
    ...(c.EDGEFLEET_PROFILES_DIR ? { profilesDir: c.EDGEFLEET_PROFILES_DIR } : {}),
  };
  return { ok: true, value: { options, logLevel: c.EDGEFLEET_LOG_LEVEL, help: flags.help === true } };
}
