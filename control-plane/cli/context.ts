import type { Command } from 'commander';
import { ApiClient } from './client.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { renderCsv, renderJson, renderTable, type Column, type OutputMode } from './format.ts';
import { resolveConnection, type ConnectionFlags } from './settings.ts';

export type Out = { write(s: string): unknown; isTTY?: boolean; columns?: number };

/** What a command may touch: its streams, env and signal hooks. Injected so tests run the CLI in-process. */
export type CliIo = {
  stdout: Out;
  stderr: Out;
  env: NodeJS.ProcessEnv;
  /**
   * The folder relative paths (the default data folder .edgefleet/control-plane among them) resolve against. Always
   * given by the caller, never read from process.cwd() here: tests pass a temp folder, so what a quick start left in
   * the working tree cannot leak into them.
   */
  cwd: string;
  /** Resolves on Ctrl-C / SIGTERM (for `up` and `--watch`). */
  interrupted: () => Promise<string>;
};

export type CliContext = {
  io: CliIo;
  client(cmd: Command): ApiClient;
  /** Print rows as a table, CSV or JSON (`json` is what the API returned, unchanged). */
  emit<T>(cmd: Command, rows: readonly T[], columns: { table: readonly Column<T>[]; csv?: readonly Column<T>[] }, json: unknown): void;
  mode(cmd: Command): OutputMode;
  print(s: string): void;
  note(s: string): void;
};

export function createContext(io: CliIo): CliContext {
  const ctx: CliContext = {
    io,
    client(cmd) {
      const g = cmd.optsWithGlobals() as ConnectionFlags;
      const conn = resolveConnection(g, io.env, io.cwd);
      return new ApiClient({ server: conn.server, token: conn.token });
    },
    mode(cmd) {
      const o = cmd.opts() as { json?: boolean; csv?: boolean };
      if (o.json && o.csv) throw new CliError(EXIT.usage, 'give --json or --csv, not both');
      return o.json ? 'json' : o.csv ? 'csv' : 'table';
    },
    emit(cmd, rows, columns, json) {
      const mode = ctx.mode(cmd);
      if (mode === 'json') io.stdout.write(renderJson(json));
      else if (mode === 'csv') io.stdout.write(renderCsv(rows, columns.csv ?? columns.table));
      else io.stdout.write(rows.length === 0 ? '(none)\n' : renderTable(rows, columns.table));
    },
    print: (s) => void io.stdout.write(s.endsWith('\n') ? s : s + '\n'),
    note: (s) => void io.stderr.write(s.endsWith('\n') ? s : s + '\n'),
  };
  return ctx;
}

export function outputOptions(cmd: Command): Command {
  return cmd.option('--json', 'print the API response as JSON').option('--csv', 'print rows as CSV');
}

