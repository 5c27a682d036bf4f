import type { Command } from 'commander';
import { optionalRoute } from '../client.ts';
import { itemsOf, outputOptions, type CliContext } from '../context.ts';
import { ago, renderCsv, renderJson, renderTable, type Column } from '../format.ts';
import { csvColumns, genericColumns } from './generic.ts';

type FleetReport = {
  generatedAt: number;
  devices: number;
  byStatus: Record<string, number>;
  byProfile: { profileId: string; name: string; devices: number; online: number; offline: number; lastSeen: number | null }[];
  byAgentVersion: Record<string, number>;
  unassigned: number;
};

const BY_PROFILE: Column<FleetReport['byProfile'][number]>[] = [
  { header: 'PROFILE', value: (p) => p.profileId },
  { header: 'DEVICES', value: (p) => p.devices },
  { header: 'ONLINE', value: (p) => p.online },
  { header: 'OFFLINE', value: (p) => p.offline },
  { header: 'LAST SEEN', value: (p) => ago(p.lastSeen) },
];

/** A report of an area still being built: print its row arrays as tables, whatever they are called. */
function printLooseReport(ctx: CliContext, cmd: Command, body: unknown): void {
  const mode = ctx.mode(cmd);
  if (mode === 'json') return void ctx.io.stdout.write(renderJson(body));
  const tables = Object.entries((body ?? {}) as Record<string, unknown>).filter(([, v]) => Array.isArray(v) && v.length > 0 && typeof v[0] === 'object') as [string, Record<string, unknown>[]][];
  if (mode === 'csv') {
    const rows = tables.length ? tables[0]![1] : itemsOf(body);
    return void ctx.io.stdout.write(renderCsv(rows, csvColumns(rows)));
  }
  const scalars = Object.entries((body ?? {}) as Record<string, unknown>).filter(([, v]) => v === null || typeof v !== 'object');
  for (const [k, v] of scalars) ctx.print(`${k}: ${String(v)}`);
  for (const [name, rows] of tables) {
    ctx.print(`\n${name}:`);
    ctx.io.stdout.write(renderTable(rows, genericColumns(rows)));
  }
}

export function registerReportCommands(program: Command, ctx: CliContext): void {
  const report = program.command('report').description('fleet, model and rollout reports (tables, --json, --csv)');

  outputOptions(report.command('fleet').description('devices by profile, status and agent version')).action(async (_o: unknown, cmd: Command) => {
    const r = await ctx.client(cmd).get<FleetReport>('/reports/fleet');
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
      const body = await optionalRoute('model reports (/reports/models/:id)', () => ctx.client(cmd).get(`/reports/models/${encodeURIComponent(id)}`));
      printLooseReport(ctx, cmd, body);
    },
  );

  outputOptions(report.command('rollout').description('a rollout: waves, device states, gate decisions').argument('<id>', 'rollout id')).action(
    async (id: string, _o: unknown, cmd: Command) => {
      const body = await optionalRoute('rollout reports (/reports/rollouts/:id)', () => ctx.client(cmd).get(`/reports/rollouts/${encodeURIComponent(id)}`));
      printLooseReport(ctx, cmd, body);
    },
  );
}
