import type { Command } from 'commander';
import { DeviceDetailSchema, DeviceListSchema, DeviceViewSchema, type DeviceView } from '../../../shared/api/devices.ts';
import { outputOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { ago, cell, renderFields, renderJson, renderTable, type Column } from '../format.ts';

export type { DeviceView };
const iso = (ts: number | null): string => (ts === null ? '' : new Date(ts).toISOString());

export const DEVICE_TABLE: Column<DeviceView>[] = [
  { header: 'ID', value: (d) => d.id },
  { header: 'STATUS', value: (d) => d.status },
  { header: 'PROFILE', value: (d) => d.profileId ?? '-' },
  { header: 'WHY', value: (d) => d.profileReason ?? '' },
  { header: 'AGENT', value: (d) => d.agentVersion ?? '-' },
  { header: 'LAST SEEN', value: (d) => ago(d.lastSeen) },
  { header: 'LABELS', value: (d) => d.labels },
];

const DEVICE_CSV: Column<DeviceView>[] = [
  { header: 'id', value: (d) => d.id },
  { header: 'status', value: (d) => d.status },
  { header: 'profileId', value: (d) => d.profileId },
  { header: 'profileReason', value: (d) => d.profileReason },
  { header: 'profileOverride', value: (d) => d.profileOverride },
  { header: 'agentVersion', value: (d) => d.agentVersion },
  { header: 'lastSeen', value: (d) => iso(d.lastSeen) },
  { header: 'createdAt', value: (d) => iso(d.createdAt) },
  { header: 'labels', value: (d) => d.labels },
];

/** `key=value` sets a label, `key-` removes it (as kubectl does). */
export function parseLabelArgs(args: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(0, eq)] = a.slice(eq + 1);
    else if (a.endsWith('-') && a.length > 1) out[a.slice(0, -1)] = null;
    else throw new CliError(EXIT.usage, `"${a}": give key=value to set a label or key- to remove it`);
  }
  return out;
}

const enc = encodeURIComponent;

export function registerDeviceCommands(program: Command, ctx: CliContext): void {
  const devices = program.command('devices').description('list, inspect, label, re-profile and revoke devices');

  outputOptions(
    devices
      .command('ls')
      .description('list devices')
      .option('--profile <id>', 'only devices on this profile')
      .option('--status <status>', 'online | offline | unknown | revoked')
      .option('--label <k=v,...>', 'only devices with all these labels')
      .option('--search <text>', 'only devices whose id contains this text')
      .option('--limit <n>', 'page size (1-1000)', '1000')
      .option('--offset <n>', 'skip this many', '0'),
  ).action(async (o: { profile?: string; status?: string; label?: string; search?: string; limit: string; offset: string }, cmd: Command) => {
    const q = new URLSearchParams({ limit: o.limit, offset: o.offset });
    if (o.profile) q.set('profile', o.profile);
    if (o.status) q.set('status', o.status);
    if (o.label) q.set('label', o.label);
    if (o.search) q.set('q', o.search);
    const body = await ctx.client(cmd).typed(DeviceListSchema, 'GET', `/devices?${q}`);
    ctx.emit(cmd, body.items, { table: DEVICE_TABLE, csv: DEVICE_CSV }, body);
    if (ctx.mode(cmd) === 'table' && body.total > body.items.length) ctx.note(`showing ${body.items.length} of ${body.total}; use --limit/--offset for more`);
  });

  devices
    .command('show')
    .description('one device: facts, profile and why, labels, heartbeat, presence history')
    .argument('<id>', 'device id')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const d = await ctx.client(cmd).typed(DeviceDetailSchema, 'GET', `/devices/${enc(id)}`);
      if (o.json) return void ctx.io.stdout.write(renderJson(d));
      const f = d.facts;
      ctx.print(
        renderFields([
          ['id', d.id],
          ['status', d.status],
          ['profile', d.profileId ?? '-'],
          ['why', d.profileReason ?? ''],
          ['override', d.profileOverride ?? '(none)'],
          ['labels', Object.keys(d.labels).length ? d.labels : '(none)'],
          ['agent', d.agentVersion ?? '-'],
          ['last seen', `${ago(d.lastSeen)}${d.lastSeen ? ` (${iso(d.lastSeen)})` : ''}`],
          ['registered', iso(d.createdAt)],
          ['births', d.births],
          ['revoked', d.revokedAt ? iso(d.revokedAt) : 'no'],
          ['model', d.currentModel ? `${d.currentModel.modelId} v${d.currentModel.version}` : '(none)'],
          ['host', f ? `${f.hostname} ${f.platform}/${f.arch}` : '-'],
          ['cpu', f ? `${f.cpu.brand} x${f.cpu.cores}` : '-'],
          ['memory', f ? `${(f.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '-'],
          ...(d.profileReason === 'fallback'
            ? ([['not matched', d.profileMatches.filter((m) => !m.matches).map((m) => `${m.profileId} (${m.failedRules.join(', ')})`).join('; ')]] as [string, string][])
            : []),
          ['heartbeat', d.heartbeat ? `load ${d.heartbeat.load1.toFixed(2)}, memory ${(d.heartbeat.memUsedBytes / 2 ** 30).toFixed(1)}/${(d.heartbeat.memTotalBytes / 2 ** 30).toFixed(1)} GiB${d.heartbeat.temperatureC === null ? '' : `, ${d.heartbeat.temperatureC} °C`}` : '-'],
        ]),
      );
      if (d.statusHistory.length) {
        ctx.print('presence history:');
        ctx.print(renderTable(d.statusHistory.slice(0, 10), [
          { header: '  AT', value: (h) => `  ${iso(h.at)}` },
          { header: 'STATUS', value: (h) => h.status },
          { header: 'REASON', value: (h) => h.reason },
        ]));
      }
    });

  devices
    .command('label')
    .description('set labels (key=value) or remove them (key-)')
    .argument('<id>', 'device id')
    .argument('<labels...>', 'key=value to set, key- to remove')
    .option('--json', 'print the updated device as JSON')
    .action(async (id: string, labels: string[], o: { json?: boolean }, cmd: Command) => {
      const d = await ctx.client(cmd).typed(DeviceViewSchema, 'PATCH', `/devices/${enc(id)}`, { labels: parseLabelArgs(labels) });
      ctx.print(o.json ? renderJson(d) : `${d.id}: labels ${cell(d.labels) || '(none)'}`);
    });

  devices
    .command('set-profile')
    .description('pin a device to a profile; "auto" returns it to matching')
    .argument('<id>', 'device id')
    .argument('<profile>', 'profile id, or "auto"')
    .option('--json', 'print the updated device as JSON')
    .action(async (id: string, profile: string, o: { json?: boolean }, cmd: Command) => {
      const d = await ctx.client(cmd).typed(DeviceViewSchema, 'PATCH', `/devices/${enc(id)}`, { profileOverride: profile === 'auto' ? null : profile });
      ctx.print(o.json ? renderJson(d) : `${d.id}: profile ${d.profileId ?? '-'} (${d.profileReason ?? ''})`);
    });

  devices
    .command('revoke')
    .description('revoke a device: its credential is removed and it is disconnected; its record stays')
    .argument('<id>', 'device id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).delete(`/devices/${enc(id)}`);
      ctx.print(`${id}: revoked`);
    });
}
