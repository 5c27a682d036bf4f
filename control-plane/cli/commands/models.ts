import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { ModelGetSchema, ModelListSchema } from '../../../shared/api/models.ts';
import type { ModelVersion } from '../../../shared/registry.ts';
import { outputOptions, type CliContext } from '../context.ts';
import { ago, renderJson } from '../format.ts';
import { csvColumns } from './generic.ts';

type Row = ModelVersion;

export function registerModelCommands(program: Command, ctx: CliContext): void {
  const models = program.command('models').description('the model registry: trained models, their artifacts per recipe, lineage');

  outputOptions(models.command('ls').description('list models')).action(async (_o: unknown, cmd: Command) => {
    const body = await optionalRoute('the model registry (/models)', () => ctx.client(cmd).typed(ModelListSchema, 'GET', '/models?limit=1000'));
    const rows = body.items;
    ctx.emit(
      cmd,
      rows,
      {
        table: [
          { header: 'ID', value: (m: Row) => m.id },
          { header: 'VERSION', value: (m: Row) => m.version },
          { header: 'PROFILE', value: (m: Row) => m.profileId ?? '-' },
          { header: 'RECIPE', value: (m: Row) => m.recipeId ?? '-' },
          { header: 'KIND', value: (m: Row) => m.kind },
          { header: 'ROLE', value: (m: Row) => m.role },
          { header: 'SIZE', value: (m: Row) => m.size },
          { header: 'ACCURACY', value: (m: Row) => m.metrics.accuracy },
          { header: 'JOB', value: (m: Row) => m.lineage.jobId ?? '-' },
          { header: 'CREATED', value: (m: Row) => ago(m.createdAt) },
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
      ctx.io.stdout.write(renderJson(await optionalRoute('the model registry (/models)', () => ctx.client(cmd).typed(ModelGetSchema, 'GET', `/models/${encodeURIComponent(id)}`))));
    });
}
