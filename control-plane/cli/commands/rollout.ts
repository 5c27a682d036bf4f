import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { itemsOf, pick, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderJson, renderTable } from '../format.ts';
import { genericColumns } from './generic.ts';

type Rollout = Record<string, unknown>;
const TERMINAL = new Set(['completed', 'succeeded', 'done', 'aborted', 'rolled-back', 'rolledback', 'failed']);
const WHAT = 'rollouts (/rollouts)';

export function renderRollout(r: Rollout): string {
  const lines = [
    `rollout ${String(pick(r, 'id'))}: ${String(pick(r, 'state', 'status'))}  model ${String(pick(r, 'modelId', 'model') ?? '-')}  profile ${String(pick(r, 'profileId', 'profile') ?? '-')}`,
  ];
  const waves = pick(r, 'waves');
  if (Array.isArray(waves) && waves.length) lines.push('', renderTable(waves as Record<string, unknown>[], genericColumns(waves as Record<string, unknown>[])).trimEnd());
  const devices = pick(r, 'devices', 'deviceStates');
  if (Array.isArray(devices) && devices.length) {
    const counts: Record<string, number> = {};
    for (const d of devices as Record<string, unknown>[]) counts[String(pick(d, 'state', 'status'))] = (counts[String(pick(d, 'state', 'status'))] ?? 0) + 1;
    lines.push('', `devices: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  const gates = pick(r, 'gates', 'gateDecisions');
  if (Array.isArray(gates) && gates.length) lines.push('', 'gates:', renderTable(gates as Record<string, unknown>[], genericColumns(gates as Record<string, unknown>[])).trimEnd());
  return lines.join('\n') + '\n';
}

export function registerRolloutCommands(program: Command, ctx: CliContext): void {
  const rollout = program.command('rollout').description('roll a model out to a profile in waves, watch it, pause, resume, abort, roll back');

  rollout
    .command('create')
    .description('start a rollout (POST /rollouts); flags fill in or override the spec file')
    .argument('[spec]', 'rollout spec JSON file ("-" for stdin)')
    .option('--model <id>', 'model id')
    .option('--profile <id>', 'device profile')
    .option('--waves <percents>', 'wave sizes as percents of the profile, e.g. 10,50,100')
    .option('--json', 'print the API response as JSON')
    .action(async (spec: string | undefined, o: { model?: string; profile?: string; waves?: string; json?: boolean }, cmd: Command) => {
      let body: Record<string, unknown> = {};
      if (spec) {
        try {
          body = JSON.parse(readFileSync(spec === '-' ? 0 : spec, 'utf8')) as Record<string, unknown>;
        } catch (e) {
          throw new CliError(EXIT.usage, `${spec}: ${(e as Error).message}`);
        }
      }
      if (o.model) body.modelId = o.model;
      if (o.profile) body.profileId = o.profile;
      if (o.waves) {
        const ps = o.waves.split(',').map(Number);
        if (ps.some((p) => !(p > 0 && p <= 100))) throw new CliError(EXIT.usage, `--waves "${o.waves}": give percents between 1 and 100, comma-separated`);
        body.waves = ps.map((percent) => ({ percent }));
      }
      const r = await optionalRoute(WHAT, () => ctx.client(cmd).post<Rollout>('/rollouts', body));
      ctx.io.stdout.write(o.json ? renderJson(r) : renderRollout(r));
    });

  rollout
    .command('ls')
    .description('list rollouts')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const body = await optionalRoute(WHAT, () => ctx.client(cmd).get('/rollouts'));
      const rows = itemsOf(body);
      ctx.io.stdout.write(o.json ? renderJson(body) : rows.length ? renderTable(rows, genericColumns(rows, 8)) : '(none)\n');
    });

  rollout
    .command('status')
    .description('waves, per-device states and gate decisions')
    .argument('<id>', 'rollout id')
    .option('-w, --watch', 'refresh until the rollout ends or Ctrl-C')
    .option('--interval <seconds>', 'refresh interval for --watch', '2')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, o: { watch?: boolean; interval: string; json?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      const get = (): Promise<Rollout> => optionalRoute(WHAT, () => client.get<Rollout>(`/rollouts/${encodeURIComponent(id)}`));
      const stop = ctx.io.interrupted().then(() => 'stop');
      for (;;) {
        const r = await get();
        if (o.watch && ctx.io.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
        ctx.io.stdout.write(o.json ? renderJson(r) : renderRollout(r));
        if (!o.watch || TERMINAL.has(String(pick(r, 'state', 'status')))) return;
        const next = await Promise.race([stop, new Promise((res) => setTimeout(res, Math.max(200, Number(o.interval) * 1000 || 2000), 'tick'))]);
        if (next === 'stop') return;
      }
    });

  for (const [action, what] of [
    ['pause', 'hold the rollout before its next wave'],
    ['resume', 'continue a paused rollout'],
    ['abort', 'stop the rollout; installed devices keep the new model'],
    ['rollback', 'stop the rollout and return its devices to their previous model'],
  ] as const) {
    rollout
      .command(action)
      .description(what)
      .argument('<id>', 'rollout id')
      .option('--json', 'print the API response as JSON')
      .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
        const r = await optionalRoute(`${action} of rollouts (/rollouts/:id/${action})`, () => ctx.client(cmd).post<Rollout>(`/rollouts/${encodeURIComponent(id)}/${action}`, {}));
        ctx.io.stdout.write(o.json ? renderJson(r) : `${id}: ${action} sent; state ${String(pick(r, 'state', 'status') ?? '?')}\n`);
      });
  }
}
