import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CliError, EXIT } from './exit-codes.ts';

export const DEFAULT_DATA_DIR = '.edgefleet/control-plane';
export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

const ConfigFileSchema = z.object({ server: z.string().url().optional(), token: z.string().min(1).optional() }).passthrough();
const EndpointsSchema = z.object({ http: z.string().url() }).passthrough();

export type ConnectionFlags = { server?: string; token?: string; dataDir?: string; config?: string };
export type Connection = { server: string; token: string | null; serverFrom: string; tokenFrom: string };

export function configFilePath(env: NodeJS.ProcessEnv): string {
  if (env.EDGEFLEET_CONFIG) return env.EDGEFLEET_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'edgefleet', 'config.json');
}

function readOptional(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(EXIT.usage, `${path}: cannot read (${(e as Error).message})`);
  }
}

function readJson<T>(path: string, schema: z.ZodType<T>): T | null {
  const text = readOptional(path);
  if (text === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CliError(EXIT.usage, `${path}: not valid JSON`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CliError(EXIT.usage, `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * Where the server and the operator token come from, first match wins:
 * flags, then EDGEFLEET_SERVER / EDGEFLEET_TOKEN, then the config file, then the local control plane's data folder
 * (`endpoints.json` and `operator-token`, written by edgefleet-control-plane and `edgefleet up`).
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, cwd: string): Connection {
  const cfgPath = flags.config ?? configFilePath(env);
  const cfg = readJson(cfgPath, ConfigFileSchema);
  const dataDir = resolve(cwd, flags.dataDir ?? env.EDGEFLEET_DATA_DIR ?? DEFAULT_DATA_DIR);
  const endpoints = readJson(join(dataDir, 'endpoints.json'), EndpointsSchema);
  const tokenFile = join(dataDir, 'operator-token');
  const fileToken = readOptional(tokenFile)?.trim() || null;

  const server: [string, string] | undefined = flags.server
    ? [flags.server, '--server']
    : env.EDGEFLEET_SERVER
      ? [env.EDGEFLEET_SERVER, 'EDGEFLEET_SERVER']
      : cfg?.server
        ? [cfg.server, cfgPath]
        : endpoints
          ? [endpoints.http, join(dataDir, 'endpoints.json')]
          : undefined;
  const token: [string, string] | undefined = flags.token
    ? [flags.token, '--token']
    : env.EDGEFLEET_TOKEN
      ? [env.EDGEFLEET_TOKEN, 'EDGEFLEET_TOKEN']
      : cfg?.token
        ? [cfg.token, cfgPath]
        : fileToken
          ? [fileToken, tokenFile]
          : undefined;
  const url = server?.[0] ?? DEFAULT_SERVER;
  if (!/^https?:\/\/[^/]+/.test(url)) throw new CliError(EXIT.usage, `server "${url}" (from ${server?.[1] ?? 'default'}) is not an http(s):// URL`);
  return { server: url, token: token?.[0] ?? null, serverFrom: server?.[1] ?? 'default', tokenFrom: token?.[1] ?? 'none' };
}
