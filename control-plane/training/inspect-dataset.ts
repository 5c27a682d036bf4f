import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DatasetSummarySchema, type DatasetSummary, type TrainingJobSpec } from '../../shared/training.ts';

/**
 * Adapter: the submit-time look at a job's dataset, so a path that does not exist or a CSV passed as NPZ is a 400 at
 * `POST /training-jobs` and not a failure twenty minutes later. Runs the trainer's torch-free
 * `edgefleet_trainer.inspect_dataset` in a child process (headers and a sample, never every pixel), off the event loop.
 */

const TRAINER_DIR = fileURLToPath(new URL('../trainer/', import.meta.url));
const MAX_OUTPUT = 256 * 1024;

export type DatasetCheck =
  | { ok: true; value: DatasetSummary }
  /** `field` is the request's field the trainer named (`dataset.path`...), else `dataset`. */
  | { ok: false; kind: 'bad-dataset'; field: string; message: string }
  /** The check itself could not run or answer in time: not the dataset's fault. */
  | { ok: false; kind: 'unavailable'; message: string };

export type InspectDataset = (dataset: TrainingJobSpec['dataset']) => Promise<DatasetCheck>;

export function createDatasetInspector(opts: { python?: string; timeoutMs?: number } = {}): InspectDataset {
  const python = opts.python ?? process.env['EDGEFLEET_PYTHON'] ?? '/usr/bin/python3';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return (dataset) =>
    new Promise((resolve) => {
      let out = '';
      let err = '';
      let settled = false;
      const done = (r: DatasetCheck): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const child = spawn(python, ['-m', 'edgefleet_trainer.inspect_dataset'], {
        cwd: TRAINER_DIR,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        done({ ok: false, kind: 'unavailable', message: `the dataset check did not answer within ${Math.round(timeoutMs / 1000)} s` });
      }, timeoutMs);
      timer.unref();
      child.on('error', (e) => done({ ok: false, kind: 'unavailable', message: `cannot start ${python} to check the dataset: ${e.message}` }));
      child.stdin.on('error', () => {
        /* it may exit before reading; its exit says why */
      });
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (t: string) => {
        if (out.length < MAX_OUTPUT) out += t;
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (t: string) => {
        err = (err + t).slice(-2000);
      });
      child.on('close', (code) => done(interpret(out, code, err)));
      child.stdin.end(JSON.stringify({ dataset }));
    });
}

/** One JSON line from the inspector, its exit code and stderr → the check's verdict. Pure. */
export function interpret(stdout: string, code: number | null, stderr: string): DatasetCheck {
  const line = stdout.trim().split('\n').pop() ?? '';
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, kind: 'unavailable', message: `the dataset check failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? 'no output'}` };
  }
  const summary = DatasetSummarySchema.safeParse(raw);
  if (summary.success && code === 0) return { ok: true, value: summary.data };
  const r = raw as { type?: unknown; code?: unknown; message?: unknown };
  if (r.type === 'error' && (r.code === 'bad-dataset' || r.code === 'bad-spec') && typeof r.message === 'string') {
    const m = /^(dataset(?:\.[A-Za-z]+)?): /.exec(r.message);
    return { ok: false, kind: 'bad-dataset', field: m ? m[1]! : 'dataset', message: m ? r.message.slice(m[0].length) : r.message };
  }
  const why = typeof r.message === 'string' ? r.message : `unexpected answer ${line.slice(0, 200)}`;
  return { ok: false, kind: 'unavailable', message: `the dataset check failed: ${why}` };
}
