import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { ModelGetSchema } from '../../../shared/api/models.ts';
import { FINISHED_ROLLOUT_STATES, RolloutListSchema, RolloutViewSchema, type RolloutView } from '../../../shared/api/rollouts.ts';
import type { CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { ago, renderJson, renderTable, type Column } from '../format.ts';
import { genericColumns } from './generic.ts';

const TERMINAL = new Set<string>(FINISHED_ROLLOUT_STATES);
const WHAT = 'rollouts (/rollouts)';

/** Renders GET /rollouts/:id ({summary, waves, devices, events}). */
export function renderRollout(r: RolloutView): string {
  const s = r.summary;
  const lines = [
    `rollout ${s.id} (${s.name || '-'}): ${s.state}, wave ${s.currentWave}`,
    `models: ${s.models.map((m) => `${m.modelId}@${m.version} -> ${m.profileId}`).join(', ') || '-'}`,
  ];
  if (s.abortReason) lines.push(`stopped because: ${s.abortReason}`);
  if (r.waves.length) lines.push('', renderTable(r.waves, genericColumns(r.waves)).trimEnd());
  // the counts of the whole rollout (the view's devices are one page of them)
  const counts = Object.entries(r.deviceStates);
  if (counts.length) lines.push('', `devices: ${counts.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push(`gates: ${Object.entries(s.gates).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`);
  return lines.join('\n') + '\n';
}

type RolloutSummary = RolloutView['summary'];

/** ISO time (UTC, to the second) and how long ago, e.g. `2026-12-02 06:10:04Z (3m ago)`. */
export function when(ts: number | null | undefined, now = Date.now()): string {
  if (ts === null || ts === undefined) return '-';
  return `${new Date(ts).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')} (${ago(ts, now)})`;
}

const ROLLOUT_COLUMNS: Column<RolloutSummary>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: 'NAME', value: (r) => r.name || '-' },
  { header: 'STATE', value: (r) => r.state },
  { header: 'WAVE', value: (r) => r.currentWave },
  { header: 'DEVICES', value: (r) => r.devices },
  { header: 'MODELS', value: (r) => r.models.map((m) => `${m.modelId}@${m.version} -> ${m.profileId}`).join(', ') },
  { header: 'CREATED', value: (r) => when(r.createdAt) },
  { header: 'FINISHED', value: (r) => when(r.finishedAt) },
];

/** The name a rollout created from the CLI gets when none is given: what goes where, and when. */
export function defaultRolloutName(models: readonly { modelId: string; version: number; profileId: string }[], now = Date.now()): string {
  const what = models.map((m) => `${m.modelId}@${m.version} to ${m.profileId}`).join(', ');
  const stamp = new Date(now).toISOString().slice(0, 16).replace('T', ' ');
  return `${what.length > 100 ? `${what.slice(0, 97)}...` : what} (${stamp}Z)`;
}

export function registerRolloutCommands(program: Command, ctx: CliContext): void {
  const rollout = program.command('rollout').description('roll a model out to a profile in waves, watch it, pause, resume, abort, roll back');

  rollout
    .command('create')
    .description('start a rollout (POST /rollouts); flags fill in or override the spec file')
    .argument('[spec]', 'rollout spec JSON file ("-" for stdin), as in GET /openapi.json')
    .option('--model <id[@version]>', 'model to roll out (repeatable); the newest version when none is given', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--name <name>', 'rollout name (default: the models, their profiles and the time)')
    .option('--profile <id>', 'profile for a model built for none (fp32 fallbacks); default: the profile the model was built for')
    .option('--canary <n>', 'devices in the first wave', '1')
    .option('--waves <percents>', 'cumulative percents after the canary, e.g. 10,50,100', '100')
    .option('--label <k=v>', 'only devices with this label (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--max-failure-percent <p>', 'gate: stop above this share of failed devices', '20')
    .option('--max-accuracy-drop <points>', 'gate: device accuracy this far (0..1) below central fails it')
    .option('--max-latency-regression <percent>', 'gate: p50 this much slower than the previous model fails it')
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        spec: string | undefined,
        o: { model: string[]; name?: string; profile?: string; canary: string; waves: string; label: string[]; maxFailurePercent: string; maxAccuracyDrop?: string; maxLatencyRegression?: string; json?: boolean },
        cmd: Command,
      ) => {
        const client = ctx.client(cmd);
        let body: Record<string, unknown> = {};
        if (spec) {
          try {
            body = JSON.parse(readFileSync(spec === '-' ? 0 : spec, 'utf8')) as Record<string, unknown>;
          } catch (e) {
            throw new CliError(EXIT.usage, `${spec}: ${(e as Error).message}`);
          }
        }
        if (o.model.length) {
          const models = [];
          for (const m of o.model) {
            const [id, v] = m.split('@') as [string, string | undefined];
            if (v !== undefined && !/^[1-9]\d*$/.test(v)) throw new CliError(EXIT.usage, `--model ${m}: the version after @ must be a positive integer`);
            const found = await client.typed(ModelGetSchema, 'GET', `/models/${encodeURIComponent(id)}${v ? `?version=${v}` : ''}`);
            // ?version= answers that version; without it, the model with its versions, newest first
            const chosen = 'versions' in found ? found.versions[0] : found;
            const version = chosen?.version;
            if (!version) throw new CliError(EXIT.usage, `--model ${m}: the registry lists no version of ${id}`);
            const profileId = o.profile ?? chosen?.profileId ?? null;
            if (!profileId) throw new CliError(EXIT.usage, `--model ${m}: ${id} v${version} was built for no profile (an fp32 baseline?): say where it goes with --profile <id>`);
            models.push({ modelId: id, version, profileId });
          }
          body.models = models;
        }
        if (!Array.isArray(body.models) || body.models.length === 0) {
          throw new CliError(EXIT.usage, '--model is required (--model <id[@version]>, repeatable), or a spec file with "models"');
        }
        if (o.name !== undefined) body.name = o.name;
        else if (!body.name) body.name = defaultRolloutName(body.models as { modelId: string; version: number; profileId: string }[]);
        const percents = o.waves.split(',').map(Number);
        if (percents.some((p) => !(p > 0 && p <= 100))) throw new CliError(EXIT.usage, `--waves "${o.waves}": give percents between 1 and 100, comma-separated`);
        body.waves ??= { canary: { count: Math.max(1, Number(o.canary) || 1) }, then: { percents } };
        if (o.label.length) body.labels = Object.fromEntries(o.label.map((l) => l.split('=') as [string, string]));
        body.gates ??= {
          maxFailurePercent: Number(o.maxFailurePercent),
          ...(o.maxAccuracyDrop ? { maxAccuracyDrop: Number(o.maxAccuracyDrop) } : {}),
          ...(o.maxLatencyRegression ? { maxLatencyRegressionPercent: Number(o.maxLatencyRegression) } : {}),
        };
        const r = await optionalRoute(WHAT, () => client.typed(RolloutViewSchema, 'POST', '/rollouts', body));
        ctx.io.stdout.write(o.json ? renderJson(r) : renderRollout(r));
      },
    );

  rollout
    .command('ls')
    .description('list rollouts')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const body = await optionalRoute(WHAT, () => ctx.client(cmd).typed(RolloutListSchema, 'GET', '/rollouts'));
      ctx.io.stdout.write(o.json ? renderJson(body) : body.items.length ? renderTable(body.items, ROLLOUT_COLUMNS) : '(none)\n');
    });

  rollout
    .command('status')
    .description('waves, device counts per state and gate decisions (every device: report rollout <id>)')
    .argument('<id>', 'rollout id')
    .option('-w, --watch', 'refresh until the rollout ends or Ctrl-C')
    .option('--interval <seconds>', 'refresh interval for --watch', '2')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, o: { watch?: boolean; interval: string; json?: boolean }, cmd: Command) => {
      const client = ctx.client(cmd);
      const get = (): Promise<RolloutView> => optionalRoute(WHAT, () => client.typed(RolloutViewSchema, 'GET', `/rollouts/${encodeURIComponent(id)}`));
      const stop = ctx.io.interrupted().then(() => 'stop');
      for (;;) {
        const r = await get();
        if (o.watch && ctx.io.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
        ctx.io.stdout.write(o.json ? renderJson(r) : renderRollout(r));
        if (!o.watch || TERMINAL.has(r.summary.state)) return;
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
        const r = await optionalRoute(`${action} of rollouts (/rollouts/:id/${action})`, () => ctx.client(cmd).typed(RolloutViewSchema, 'POST', `/rollouts/${encodeURIComponent(id)}/${action}`, {}));
        ctx.io.stdout.write(o.json ? renderJson(r) : `${id}: ${action} sent; state ${r.summary.state}\n`);
      });
  }
}
