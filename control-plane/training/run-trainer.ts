import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  parseTrainerLine,
  type ArtifactLine,
  type ErrorLine,
  type ResultLine,
  type TrainerLine,
} from '../../shared/training.ts';

/** Adapter: runs the Python trainer as a child process, one JSON spec in, typed JSON lines out. */

export const DEFAULT_TRAINER_SCRIPT = fileURLToPath(new URL('../trainer/train.py', import.meta.url));

export type RunTrainerOptions = {
  /** The job spec; sent as JSON on the child's stdin (validate with TrainingJobSpecSchema first). */
  spec: unknown;
  /** Interpreter with torch; default $EDGEFLEET_PYTHON or /usr/bin/python3. */
  python?: string;
  trainerScript?: string;
  onLine?: (line: TrainerLine) => void;
  /** A stdout line that is not a valid trainer line: reported, never fatal. */
  onInvalidLine?: (info: { line: string; error: string }) => void;
  onStderr?: (text: string) => void;
  onSpawn?: (pid: number) => void;
  signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL on cancel. */
  killGraceMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
};

export type RunTrainerError = { code: ErrorLine['code'] | 'spawn-failed' | 'no-result'; message: string; field?: string };

export type RunTrainerResult = {
  ok: boolean;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  cancelled: boolean;
  error?: RunTrainerError;
  result?: ResultLine;
  artifacts: ArtifactLine[];
  invalidLines: number;
};

const STDERR_TAIL = 4000;

export function runTrainer(opts: RunTrainerOptions): Promise<RunTrainerResult> {
  const python = opts.python ?? process.env['EDGEFLEET_PYTHON'] ?? '/usr/bin/python3';
  const script = opts.trainerScript ?? DEFAULT_TRAINER_SCRIPT;
  const grace = opts.killGraceMs ?? 5000;

  return new Promise((resolve) => {
    const artifacts: ArtifactLine[] = [];
    let result: ResultLine | undefined;
    let errorLine: ErrorLine | undefined;
    let invalidLines = 0;
    let stderrTail = '';
    let cancelled = false;
    let spawnError: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;

    if (opts.signal?.aborted) {
      resolve({ ok: false, exitCode: null, exitSignal: null, cancelled: true, error: { code: 'cancelled', message: 'cancelled before start' }, artifacts, invalidLines });
      return;
    }

    const child = spawn(python, ['-u', script, '--spec', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...opts.env },
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });

    if (child.pid !== undefined) opts.onSpawn?.(child.pid);

    const onAbort = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      cancelled = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, grace);
      killTimer.unref();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (e) => {
      spawnError = e;
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its spec; its exit says why */
    });
    child.stdin.end(JSON.stringify(opts.spec));

    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL);
      opts.onStderr?.(text);
    });

    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (line.trim() === '') return;
      const parsed = parseTrainerLine(line);
      if (!parsed.ok) {
        invalidLines++;
        opts.onInvalidLine?.({ line, error: parsed.error });
        return;
      }
      const msg = parsed.value;
      if (msg.type === 'artifact') artifacts.push(msg);
      else if (msg.type === 'result') result = msg;
      else if (msg.type === 'error') errorLine = msg;
      opts.onLine?.(msg);
    });

    let stdoutClosed = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let done = false;
    const finish = (): void => {
      if (done || !stdoutClosed || !exited) return;
      done = true;
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const { code, signal } = exited;
      const base = { exitCode: code, exitSignal: signal, cancelled, artifacts, invalidLines };
      if (spawnError) {
        resolve({ ...base, ok: false, error: { code: 'spawn-failed', message: `cannot start ${python}: ${spawnError.message}` } });
      } else if (cancelled) {
        resolve({ ...base, ok: false, error: { code: 'cancelled', message: 'cancelled' } });
      } else if (errorLine) {
        resolve({ ...base, ok: false, error: { code: errorLine.code, message: errorLine.message, ...(errorLine.field ? { field: errorLine.field } : {}) } });
      } else if (code !== 0) {
        const why = signal ? `killed by ${signal}` : `exit code ${code}`;
        resolve({ ...base, ok: false, error: { code: 'internal', message: `trainer failed (${why}): ${lastLine(stderrTail)}` } });
      } else if (!result) {
        resolve({ ...base, ok: false, error: { code: 'no-result', message: 'trainer exited 0 without a result line' } });
      } else {
        resolve({ ...base, ok: true, result });
      }
    };
    lines.on('close', () => {
      stdoutClosed = true;
      finish();
    });
    child.on('close', (code, signal) => {
      exited = { code, signal };
      // the child's 'close' comes after its stdio closed; let readline flush its last line first
      setImmediate(() => {
        stdoutClosed = true;
        finish();
      });
    });
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
