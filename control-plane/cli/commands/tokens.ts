import type { Command } from 'commander';
import { EnrollmentTokenCreatedSchema, EnrollmentTokenListSchema } from '../../../shared/api/fleet.ts';
import { outputOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { renderJson } from '../format.ts';


/** `90m`, `24h`, `7d`, plain seconds, or `never`. */
export function parseExpiry(s: string): number | null {
  if (s === 'never') return null;
  const m = /^(\d+)([smhd]?)$/.exec(s);
  if (!m) throw new CliError(EXIT.usage, `--expires "${s}": give seconds, or a number with s, m, h or d, or "never"`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

const iso = (ts: number | null): string => (ts === null ? 'never' : new Date(ts).toISOString());

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const tokens = program.command('tokens').description('fleet enrollment tokens');

  tokens
    .command('create')
    .description('create an enrollment token (the secret is shown once)')
    .option('--label <text>', 'what it is for', '')
    .option('--expires <when>', 'expiry: 24h, 7d, seconds, or never', '24h')
    .option('--max-uses <n>', 'how many devices may enroll with it (default unlimited)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { label: string; expires: string; maxUses?: string; json?: boolean }, cmd: Command) => {
      const maxUses = o.maxUses === undefined ? null : Number(o.maxUses);
      if (maxUses !== null && !Number.isInteger(maxUses)) throw new CliError(EXIT.usage, `--max-uses "${o.maxUses}" is not a whole number`);
      const t = await ctx.client(cmd).typed(EnrollmentTokenCreatedSchema, 'POST', '/enrollment-tokens', {
        label: o.label,
        expiresInSeconds: parseExpiry(o.expires),
        maxUses,
      });
      if (o.json) return void ctx.io.stdout.write(renderJson(t));
      ctx.print(t.token);
      ctx.note(`token ${t.id} expires ${iso(t.expiresAt)}; enroll a device with:\n  edgefleet-agent run --broker-url ${t.brokerUrl} --enrollment-token ${t.token}`);
    });

  outputOptions(tokens.command('ls').description('list enrollment tokens (never their secrets)')).action(async (_o: unknown, cmd: Command) => {
    const body = await ctx.client(cmd).typed(EnrollmentTokenListSchema, 'GET', '/enrollment-tokens');
    ctx.emit(
      cmd,
      body.items,
      {
        table: [
          { header: 'ID', value: (t) => t.id },
          { header: 'STATE', value: (t) => t.state },
          { header: 'USES', value: (t) => `${t.uses}/${t.maxUses ?? '∞'}` },
          { header: 'EXPIRES', value: (t) => iso(t.expiresAt) },
          { header: 'LABEL', value: (t) => t.label },
        ],
      },
      body,
    );
  });

  tokens
    .command('revoke')
    .description('revoke an enrollment token; enrolled devices keep their own credentials')
    .argument('<id>', 'token id (the part before the dot)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await ctx.client(cmd).delete(`/enrollment-tokens/${encodeURIComponent(id.split('.')[0]!)}`);
      ctx.print(`${id.split('.')[0]}: revoked`);
    });
}
