import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { TrainingJobViewSchema } from '../../../shared/api/models.ts';
import type { JobProgress, TrainingJobView } from '../../../shared/registry.ts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { readJsonFile } from '../json-file.ts';
import { duration, renderJson } from '../format.ts';

type Job = TrainingJobView;
export type Progress = Partial<Pick<JobProgress, 'phase' | 'recipeId' | 'epoch' | 'epochs' | 'step' | 'totalSteps' | 'loss' | 'accuracy' | 'etaSeconds' | 'jobEtaSeconds' | 'jobProgress'>>;

const DONE = new Set(['succeeded']);
const FAILED = new Set(['failed', 'cancelled', 'interrupted']);

export const jobState = (j: Job): string => j.state;
export const jobProgress = (j: Job): Progress => j.progress ?? {};

const fmt = (n: number | null | undefined, digits: number): string => (typeof n === 'number' ? n.toFixed(digits) : '-');

export function progressLine(p: Progress): string {
  return `${p.phase ?? '?'}${p.recipeId ? `[${p.recipeId}]` : ''} epoch ${p.epoch ?? '-'}/${p.epochs ?? '-'} step ${p.step ?? '-'}/${p.totalSteps ?? '-'} loss ${fmt(p.loss, 4)} acc ${fmt(p.accuracy, 4)} eta ${duration(p.etaSeconds)} job eta ${duration(p.jobEtaSeconds)}`;
}

/** Poll a job until it ends: a live bar on a terminal, one line per phase/epoch change otherwise. */
async function follow(ctx: CliContext, cmd: Command, id: string, intervalMs: number): Promise<Job> {
  const client = ctx.client(cmd);
  const tty = ctx.io.stdout.isTTY === true;
  const bar = tty
    ? new SingleBar(
        {
          format: '{phase} epoch {epoch} |{bar}| {percentage}% step {value}/{total} loss {loss} acc {accuracy} eta {eta_s} job eta {job_eta_s}',
          hideCursor: true,
          clearOnComplete: false,
          stream: ctx.io.stdout as NodeJS.WritableStream,
        },
      )
    : null;
  let started = false;
  let lastKey = '';
  let lastPrint = 0;
  const stop = ctx.io.interrupted().then(() => 'interrupted' as const);
  try {
    for (;;) {
      const job = await client.typed(TrainingJobViewSchema, 'GET', `/training-jobs/${encodeURIComponent(id)}`);
      const p = jobProgress(job);
      const state = jobState(job);
      const payload = { phase: `${p.phase ?? state}${p.recipeId ? `[${p.recipeId}]` : ''}`, epoch: `${p.epoch ?? '-'}/${p.epochs ?? '-'}`, loss: fmt(p.loss, 4), accuracy: fmt(p.accuracy, 4), eta_s: duration(p.etaSeconds), job_eta_s: duration(p.jobEtaSeconds) };
      const key = `${p.phase}|${p.recipeId}|${p.epoch}`;
      if (bar) {
        const total = Math.max(1, p.totalSteps ?? 1);
        if (!started) {
          bar.start(total, p.step ?? 0, payload);
          started = true;
        } else {
          if (key !== lastKey) bar.setTotal(total);
          bar.update(p.step ?? 0, payload);
        }
      } else if (key !== lastKey || Date.now() - lastPrint > 10_000) {
        ctx.print(`${id} ${state} ${progressLine(p)}`);
        lastPrint = Date.now();
      }
      lastKey = key;
      if (DONE.has(state) || FAILED.has(state)) return job;
      const r = await Promise.race([stop, new Promise((res) => setTimeout(res, intervalMs, 'tick'))]);
      if (r === 'interrupted') throw new CliError(EXIT.ok, `stopped following ${id}; the job goes on (edgefleet train --attach ${id})`);
    }
  } finally {
    bar?.stop();
  }
}

export function registerTrainCommand(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .description('start a training job (distill + QAT per recipe) from a JSON spec and follow its progress')
    .argument('[spec]', 'job spec JSON file ("-" for stdin); the body of POST /training-jobs')
    .option('--attach <jobId>', 'follow an existing job instead of starting one')
    .option('--detach', 'start the job and return its id without following')
    .option('--interval <seconds>', 'poll interval', '1')
    .option('--json', 'print the final job as JSON')
    .addHelpText('after', '\nA live progress bar (phase, epoch, step, loss, accuracy, phase eta, whole-job eta) on a terminal; plain lines when stdout is not a TTY.\nCtrl-C stops following; the job goes on.')
    .action(async (spec: string | undefined, o: { attach?: string; detach?: boolean; interval: string; json?: boolean }, cmd: Command) => {
      if (!spec && !o.attach) throw new CliError(EXIT.usage, 'give a job spec file, or --attach <jobId>');
      const intervalMs = Math.max(100, Number(o.interval) * 1000 || 1000);
      let id = o.attach;
      if (!id) {
        const created = await optionalRoute('training jobs (/training-jobs)', () => ctx.client(cmd).typed(TrainingJobViewSchema, 'POST', '/training-jobs', readJsonFile(spec!)));
        id = created.id;
        ctx.note(`training job ${id} started`);
        if (o.detach) return void ctx.print(o.json ? renderJson(created) : id);
      }
      const job = await optionalRoute('training jobs (/training-jobs)', () => follow(ctx, cmd, id!, intervalMs));
      const state = jobState(job);
      if (o.json) ctx.io.stdout.write(renderJson(job));
      else {
        ctx.print(`${id}: ${state}${job.error ? `: ${job.error.message}` : ''}`);
        for (const m of job.models) ctx.print(`  model ${m.id} v${m.version} (${m.role})`);
      }
      if (FAILED.has(state)) throw new CliError(EXIT.server, `training job ${id} ${state}`);
    });
}
