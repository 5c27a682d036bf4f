import type { Command } from 'commander';
import { ProfileListSchema, ProfileSchema } from '../../../shared/api/fleet.ts';
import { outputOptions, type CliContext } from '../context.ts';
import { renderJson } from '../format.ts';


export function registerProfileCommands(program: Command, ctx: CliContext): void {
  const profiles = program.command('profiles').description('device profiles: matching, runtime, quantization recipe');

  outputOptions(profiles.command('ls').description('list profiles with their device counts')).action(async (_o: unknown, cmd: Command) => {
    const body = await ctx.client(cmd).typed(ProfileListSchema, 'GET', '/profiles');
    ctx.emit(
      cmd,
      body.items,
      {
        table: [
          { header: 'ID', value: (p) => p.id },
          { header: 'PRIORITY', value: (p) => p.priority },
          { header: 'RUNTIME', value: (p) => p.runtime.engine },
          { header: 'ACTIVATIONS', value: (p) => `${p.recipe.activations.dtype} ${p.recipe.activations.symmetric ? 'sym' : 'asym'}` },
          { header: 'WEIGHTS', value: (p) => `int8 ${p.recipe.weights.granularity}` },
          { header: 'DEVICES', value: (p) => body.counts[p.id] ?? 0 },
          { header: 'NAME', value: (p) => p.name },
        ],
      },
      body,
    );
  });

  profiles
    .command('show')
    .description('one profile, as JSON')
    .argument('<id>', 'profile id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      ctx.io.stdout.write(renderJson(await ctx.client(cmd).typed(ProfileSchema, 'GET', `/profiles/${encodeURIComponent(id)}`)));
    });
}
