import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { itemsOf, outputOptions, pick, type CliContext } from '../context.ts';
import { ago, renderJson } from '../format.ts';
import { csvColumns } from './generic.ts';

type Row = Record<string, unknown>;

export function registerModelCommands(program: Command, ctx: CliContext): void {
  const models = program.command('models').description('the model registry: trained models, their artifacts per recipe, lineage');

  outputOptions(models.command('ls').description('list models')).action(async (_o: unknown, cmd: Command) => {
    const body = await optionalRoute('the model registry (/models)', () => ctx.client(cmd).get('/models?limit=1000'));
    const rows = itemsOf(body);
    ctx.emit(
      cmd,
      rows,
      {
        table: [
          { header: 'ID', value: (m: Row) => pick(m, 'id', 'modelId') },
          { header: 'VERSION', value: (m: Row) => pick(m, 'version', 'latestVersion') },
          { header: 'PROFILE', value: (m: Row) => pick(m, 'profileId') ?? '-' },
          { header: 'RECIPE', value: (m: Row) => pick(m, 'recipeId') ?? '-' },
          { header: 'KIND', value: (m: Row) => pick(m, 'kind') },
          { header: 'ROLE', value: (m: Row) => pick(m, 'role') },
          { header: 'SIZE', value: (m: Row) => pick(m, 'size') },
          { header: 'ACCURACY', value: (m: Row) => pick(m, 'metrics.accuracy') },
          { header: 'JOB', value: (m: Row) => pick(m, 'lineage.jobId', 'jobId') ?? '-' },
          { header: 'CREATED', value: (m: Row) => ago(pick(m, 'createdAt') as number | undefined) },
        ],
        csv: csvColumns(rows),
      },
      body,
    );
  });

  models
    .command('show')
    .description('one model: lineage, metrics, per-profile artifacts, diagnostics (JSON)')
    .argument('<id>', 'model id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      ctx.io.stdout.write(renderJson(await optionalRoute('the model registry (/models)', () => ctx.client(cmd).get(`/models/${encodeURIComponent(id)}`))));
    });
}
