import type { Command } from 'commander';
import { FleetReportSchema, type FleetReport } from '../../../shared/api/devices.ts';
import { ModelReportSchema, RolloutReportSchema } from '../../../shared/api/rollouts.ts';
import { optionalRoute } from '../client.ts';
import { outputOptions, type CliContext } from '../context.ts';
import { ago, cell, renderCsv, renderJson, renderTable, type Column } from '../format.ts';
import { csvColumns } from './generic.ts';

const BY_PROFILE: Column<FleetReport['byProfile'][number]>[] = [
  { header: 'PROFILE', value: (p) => p.profileId },
  { header: 'DEVICES', value: (p) => p.devices },
  { header: 'ONLINE', value: (p) => p.online },
  { header: 'OFFLINE', value: (p) => p.offline },
  { header: 'LAST SEEN', value: (p) => ago(p.lastSeen) },
];

type Row = Record<string, unknown>;
const col = (header: string, key: string, unit = ''): Column<Row> => ({ header, value: (r) => (r[key] === null || r[key] === undefined ? '–' : typeof r[key] === 'number' && unit ? `${cell(r[key])}${unit}` : r[key]) });

/** GET /reports/models/:id: {modelId, version, profiles, devices}. */
const MODEL_PROFILES: Column<Row>[] = [
  col('PROFILE', 'profileId'), col('DEVICES', 'devices'), { header: 'VERSIONS', value: (r) => (Array.isArray(r.versions) ? r.versions.join(',') : '') },
  col('P50', 'medianP50Ms', ' ms'), col('P90', 'medianP90Ms', ' ms'), col('ACCURACY', 'medianAccuracy'), col('CENTRAL', 'centralAccuracy'),
  col('DELTA', 'accuracyDeltaVsCentral'), col('FP32 P50', 'medianFp32P50Ms', ' ms'), col('SPEEDUP', 'medianSpeedupVsFp32', 'x'),
];
const MODEL_DEVICES: Column<Row>[] = [
  col('DEVICE', 'deviceId'), col('PROFILE', 'profileId'), col('VERSION', 'version'), col('P50', 'p50Ms', ' ms'), col('P90', 'p90Ms', ' ms'), col('P99', 'p99Ms', ' ms'),
  col('ACCURACY', 'accuracy'), col('FP32 P50', 'fp32P50Ms', ' ms'), col('SPEEDUP', 'speedupVsFp32', 'x'),
];
/** GET /reports/rollouts/:id: {summary, waves, devices}. */
const ROLLOUT_WAVES: Column<Row>[] = [
  col('WAVE', 'wave'), col('STATE', 'state'), col('PLANNED', 'planned'), col('DEVICES', 'devices'), col('ACTIVE', 'active'), col('IN FLIGHT', 'inFlight'),
  col('FAILED', 'failed'), col('PENDING', 'pending'), col('ROLLED BACK', 'rolledBack'), col('MEDIAN P50', 'medianP50Ms', ' ms'),
];
const ROLLOUT_DEVICES: Column<Row>[] = [
  col('DEVICE', 'deviceId'), col('PROFILE', 'profileId'), col('WAVE', 'wave'), col('STATE', 'state'), col('MODEL', 'model'), col('PREVIOUS', 'previousModel'),
  col('P50', 'p50Ms', ' ms'), col('ACCURACY', 'accuracy'), col('SPEEDUP', 'speedupVsFp32', 'x'), col('REASON', 'reason'),
];

const rowsOf = (body: unknown, key: string): Row[] => {
  const v = (body as Record<string, unknown> | null)?.[key];
  return Array.isArray(v) ? (v as Row[]) : [];
};

function printModelReport(ctx: CliContext, cmd: Command, body: unknown): void {
  const mode = ctx.mode(cmd);
  if (mode === 'json') return void ctx.io.stdout.write(renderJson(body));
  const profiles = rowsOf(body, 'profiles');
  // the same rows as the API's ?format=csv: one per profile
  if (mode === 'csv') return void ctx.io.stdout.write(renderCsv(profiles, csvColumns(profiles)));
  const b = body as { modelId?: string; version?: number | null };
  ctx.print(`model: ${b.modelId ?? '?'}   version: ${b.version ?? 'all'}   device reports: ${rowsOf(body, 'devices').length}\n`);
  if (!profiles.length) return ctx.print('no benchmark reports yet');
  ctx.io.stdout.write(renderTable(profiles, MODEL_PROFILES));
  ctx.print('');
  ctx.io.stdout.write(renderTable(rowsOf(body, 'devices'), MODEL_DEVICES));
}

function printRolloutReport(ctx: CliContext, cmd: Command, body: unknown): void {
  const mode = ctx.mode(cmd);
  if (mode === 'json') return void ctx.io.stdout.write(renderJson(body));
  const devices = rowsOf(body, 'devices');
  // the same rows as the API's ?format=csv: one per device
  if (mode === 'csv') return void ctx.io.stdout.write(renderCsv(devices, csvColumns(devices)));
  const s = ((body as Record<string, unknown> | null)?.summary ?? {}) as Row;
  ctx.print(`rollout: ${String(s.id)} (${String(s.name)})   state: ${String(s.state)}   current wave: ${String(s.currentWave)}   devices: ${String(s.devices)}`);
  if (Array.isArray(s.models)) ctx.print(`models: ${(s.models as Row[]).map((m) => `${String(m.modelId)} v${String(m.version)} (${String(m.profileId)})`).join(', ')}`);
  if (s.abortReason) ctx.print(`abort reason: ${String(s.abortReason)}`);
  ctx.print('');
  ctx.io.stdout.write(renderTable(rowsOf(body, 'waves'), ROLLOUT_WAVES));
  ctx.print('');
  ctx.io.stdout.write(renderTable(devices, ROLLOUT_DEVICES));
}

export function registerReportCommands(program: Command, ctx: CliContext): void {
  const report = program.command('report').description('fleet, model and rollout reports (tables, --json, --csv)');

  outputOptions(report.command('fleet').description('devices by profile, status and agent version')).action(async (_o: unknown, cmd: Command) => {
    const r = await ctx.client(cmd).typed(FleetReportSchema, 'GET', '/reports/fleet');
    const mode = ctx.mode(cmd);
    if (mode !== 'table') return ctx.emit(cmd, r.byProfile, { table: BY_PROFILE, csv: [
      { header: 'profileId', value: (p) => p.profileId },
      { header: 'devices', value: (p) => p.devices },
      { header: 'online', value: (p) => p.online },
      { header: 'offline', value: (p) => p.offline },
      { header: 'lastSeen', value: (p) => (p.lastSeen === null ? '' : new Date(p.lastSeen).toISOString()) },
    ] }, r);
    ctx.print(`devices: ${r.devices}   ${Object.entries(r.byStatus).map(([k, v]) => `${k}: ${v}`).join('   ')}   unassigned: ${r.unassigned}\n`);
    ctx.io.stdout.write(renderTable(r.byProfile, BY_PROFILE));
    ctx.print('');
    ctx.io.stdout.write(renderTable(Object.entries(r.byAgentVersion), [
      { header: 'AGENT VERSION', value: ([v]) => v },
      { header: 'DEVICES', value: ([, n]) => n },
    ]));
  });

  outputOptions(report.command('model').description('a model across the fleet: latency per profile, accuracy, int8 speed-up').argument('<id>', 'model id')).action(
    async (id: string, _o: unknown, cmd: Command) => {
      const body = await optionalRoute('model reports (/reports/models/:id)', () => ctx.client(cmd).typed(ModelReportSchema, 'GET', `/reports/models/${encodeURIComponent(id)}`));
      printModelReport(ctx, cmd, body);
    },
  );

  outputOptions(report.command('rollout').description('a rollout: waves, device states, gate decisions').argument('<id>', 'rollout id')).action(
    async (id: string, _o: unknown, cmd: Command) => {
      const body = await optionalRoute('rollout reports (/reports/rollouts/:id)', () => ctx.client(cmd).typed(RolloutReportSchema, 'GET', `/reports/rollouts/${encodeURIComponent(id)}`));
      printRolloutReport(ctx, cmd, body);
    },
  );
}
