/**
 * Structured logs: one JSON object per line, with the ids that concern the event (deviceId, rolloutId,
 * jobId) bound with `child`. Used by the agent and the control plane; the sink is passed in (stderr by
 * default), so nothing here decides where lines go.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export type Logger = {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields` (e.g. `{ deviceId }`). */
  child(fields: LogFields): Logger;
};

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

export function createLogger(opts: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const sink = opts.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const bound = opts.fields ?? {};
  const write = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    sink(JSON.stringify({ ts: new Date().toISOString(), level, msg, ...bound, ...fields }, errorReplacer));
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ level: opts.level ?? 'info', sink, fields: { ...bound, ...fields } }),
  };
}

/** Discards everything; the default for library callers that pass no logger. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...(('code' in value) ? { code: (value as { code: unknown }).code } : {}) };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
