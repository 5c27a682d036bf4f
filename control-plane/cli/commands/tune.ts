import type { Command } from 'commander';
import { TuningReportSchema, TuningViewSchema, type TuningReportRow, type TuningView } from '../../../shared/tuning.ts';
import { optionalRoute } from '../client.ts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { readJsonFile } from '../json-file.ts';
import { renderCsv, renderJson, renderTable, type Column } from '../format.ts';

const WHAT = 'tunings (/tunings)';
const SETTLED = new Set(['awaiting-approval', 'done', 'failed', 'cancelled']);

/** Responses are parsed with the shared schema: the CLI reads typed fields, never guessed aliases. */
function view(body: unknown): TuningView {
  const r = TuningViewSchema.safeParse(body);
  if (!r.success) throw new CliError(EXIT.server, `the server's tuning does not match the schema: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  return r.data;
}

const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const msText = (x: number | null): string => (x === null ? '-' : x.toFixed(4));

export const REPORT_COLUMNS: Column<TuningReportRow>[] = [
  { header: 'profile', value: (r) => r.profileId },
  { header: 'candidate', value: (r) => r.candidate },
  { header: 'status', value: (r) => r.status },
  { header: 'pytorch acc', value: (r) => pct(r.pytorchAccuracy) },
  { header: 'runtime acc', value: (r) => pct(r.runtimeAccuracy) },
  { header: 'device worst acc', value: (r) => pct(r.deviceWorstAccuracy) },
  { header: 'p50 ms', value: (r) => msText(r.medianP50Ms) },
  { header: 'p90 ms', value: (r) => msText(r.medianP90Ms) },
  { header: 'peak MiB', value: (r) => (r.peakRssBytes === null ? '-' : (r.peakRssBytes / 2 ** 20).toFixed(1)) },
  { header: 'int8 share', value: (r) => pct(r.integerKernelShare) },
  { header: 'model', value: (r) => `${r.modelId}@${r.version}` },
];

export function renderTuning(v: TuningView): string {
  const e = v.evaluations;
  const lines = [
    `tuning ${v.id} (${v.name}): ${v.state}; objective ${v.objective}; max accuracy drop ${pct(v.constraints.maxAccuracyDrop)} vs ${v.constraints.against}`,
    `evaluations: ${e.done} done, ${e.failed} failed, ${e.missing} missing, ${e.sent} running, ${e.pending} pending${v.trainingJobId ? `; training job ${v.trainingJobId}` : ''}`,
  ];
  for (const d of v.decisions) {
    lines.push(`${d.profileId}: ${d.chosen ? `${d.chosen.key} (${d.chosen.modelId}@${d.chosen.version})` : 'nothing chosen'}${d.measured ? '' : ' [not measured]'} on ${d.canaries.length} canary(ies): ${d.reason}`);
    for (const m of d.missing) lines.push(`  missing: ${m}`);
  }
  for (const n of v.notes) lines.push(`note: ${n}`);
  if (v.error) lines.push(`error: ${v.error.code}: ${v.error.message}`);
  if (v.rolloutId) lines.push(`rollout: ${v.rolloutId}`);
  if (v.state === 'awaiting-approval') lines.push(`approve with: edgefleet tune approve ${v.id}`);
  return lines.join('\n') + '\n';
}

async function follow(ctx: CliContext, cmd: Command, id: string, intervalMs: number): Promise<TuningView> {
  const client = ctx.client(cmd);
  const stop = ctx.io.interrupted().then(() => 'interrupted' as const);
  let last = '';
  for (;;) {
    const v = view(await client.get(`/tunings/${encodeURIComponent(id)}`));
    const e = v.evaluations;
    const line = `${v.id} ${v.state}: ${e.done + e.failed + e.missing}/${e.done + e.failed + e.missing + e.sent + e.pending} evaluations (${e.done} done, ${e.failed} failed, ${e.missing} missing)`;
    if (line !== last) ctx.note(line);
    last = line;
    if (SETTLED.has(v.state)) return v;
    const r = await Promise.race([stop, new Promise((res) => setTimeout(res, intervalMs, 'tick'))]);
    if (r === 'interrupted') throw new CliError(EXIT.ok, `stopped following ${id}; the tuning goes on (edgefleet tune status ${id})`);
  }
}

export function registerTuneCommands(program: Command, ctx: CliContext): void {
  const tune = program.command('tune').description('let canary devices measure candidate recipes per profile and pick one (POST /tunings)');

  tune
    .command('create', { isDefault: true })
    .description('start a tuning from a JSON body (teacher/student/dataset or candidates, profiles, constraints, objective) and follow it')
    .argument('<spec>', 'body of POST /tunings as a JSON file ("-" for stdin)')
    .option('--objective <o>', 'lowest-p50 | lowest-p90 | highest-accuracy | lowest-memory')
    .option('--max-accuracy-drop <x>', 'largest accuracy drop (0..1) on any canary')
    .option('--canaries <n>', 'canary devices per profile')
    .option('--auto-rollout', 'roll the choices out at once instead of waiting for approval')
    .option('--detach', 'print the id and return')
    .option('--interval <seconds>', 'poll interval', '2')
    .option('--json', 'print the final tuning as JSON')
    .action(async (spec: string, o: { objective?: string; maxAccuracyDrop?: string; canaries?: string; autoRollout?: boolean; detach?: boolean; interval: string; json?: boolean }, cmd: Command) => {
      const body = readJsonFile(spec) as Record<string, unknown>;
      if (o.objective) body.objective = o.objective;
      if (o.maxAccuracyDrop !== undefined) body.constraints = { ...(body.constraints as object | undefined), maxAccuracyDrop: Number(o.maxAccuracyDrop) };
      if (o.canaries !== undefined) body.canaries = Number(o.canaries);
      if (o.autoRollout) body.autoRollout = true;
      const created = view(await optionalRoute(WHAT, () => ctx.client(cmd).post('/tunings', body)));
      ctx.note(`tuning ${created.id} started (${created.state}, profiles ${created.profiles.join(', ')})`);
      if (o.detach) return void ctx.print(o.json ? renderJson(created) : created.id);
      const v = await follow(ctx, cmd, created.id, Math.max(200, Number(o.interval) * 1000 || 2000));
      if (o.json) ctx.io.stdout.write(renderJson(v));
      else ctx.io.stdout.write(renderTuning(v));
      if (v.state === 'failed' || v.state === 'cancelled') throw new CliError(EXIT.server, `tuning ${v.id} ${v.state}`);
    });

  tune
    .command('status')
    .description('one tuning (GET /tunings/:id), or the list')
    .argument('[id]')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string | undefined, o: { json?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      if (!id) {
        const list = await optionalRoute(WHAT, () => client.get<{ items: { id: string; name: string; state: string; profiles: string[]; rolloutId: string | null }[] }>('/tunings'));
        if (o.json) return void ctx.io.stdout.write(renderJson(list));
        return void ctx.io.stdout.write(list.items.length ? renderTable(list.items, [{ header: 'id', value: (t) => t.id }, { header: 'name', value: (t) => t.name }, { header: 'state', value: (t) => t.state }, { header: 'profiles', value: (t) => t.profiles.join(' ') }, { header: 'rollout', value: (t) => t.rolloutId ?? '-' }]) : '(none)\n');
      }
      const v = view(await optionalRoute(WHAT, () => client.get(`/tunings/${encodeURIComponent(id)}`)));
      ctx.io.stdout.write(o.json ? renderJson(v) : renderTuning(v));
    });

  tune
    .command('approve')
    .description('roll out the measured choices of a tuning awaiting approval')
    .argument('<id>')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const v = view(await optionalRoute(WHAT, () => ctx.client(cmd).post(`/tunings/${encodeURIComponent(id)}/approve`, {})));
      ctx.io.stdout.write(o.json ? renderJson(v) : renderTuning(v));
    });

  tune
    .command('cancel')
    .description('cancel a running tuning')
    .argument('<id>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const v = view(await optionalRoute(WHAT, () => ctx.client(cmd).post(`/tunings/${encodeURIComponent(id)}/cancel`, {})));
      ctx.print(`${v.id}: ${v.state}`);
    });

  tune
    .command('report')
    .description('the per-profile candidate table (GET /reports/tunings/:id)')
    .argument('<id>')
    .option('--json', 'print the API response as JSON')
    .option('--csv', 'print the rows as CSV')
    .action(async (id: string, o: { json?: boolean; csv?: boolean }, cmd: Command) => {
      if (o.json && o.csv) throw new CliError(EXIT.usage, 'give --json or --csv, not both');
      const raw = await optionalRoute(WHAT, () => ctx.client(cmd).get(`/reports/tunings/${encodeURIComponent(id)}`));
      const rep = TuningReportSchema.safeParse(raw);
      if (!rep.success) throw new CliError(EXIT.server, 'the server\'s tuning report does not match the schema');
      if (o.json) return void ctx.io.stdout.write(renderJson(raw));
      if (o.csv) return void ctx.io.stdout.write(renderCsv(rep.data.rows, [...REPORT_COLUMNS, { header: 'reasons', value: (r) => r.reasons }, { header: 'devices', value: (r) => r.devices }]));
      ctx.io.stdout.write(renderTable(rep.data.rows, REPORT_COLUMNS));
      for (const d of rep.data.tuning.decisions) ctx.print(`${d.profileId}: ${d.chosen ? d.chosen.key : 'nothing chosen'}${d.measured ? '' : ' [not measured]'}: ${d.reason}`);
    });
}
