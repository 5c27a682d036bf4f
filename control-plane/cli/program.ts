import { Command, CommanderError } from 'commander';
import { registerDeviceCommands } from './commands/devices.ts';
import { registerModelCommands } from './commands/models.ts';
import { registerProfileCommands } from './commands/profiles.ts';
import { registerReportCommands } from './commands/report.ts';
import { registerRolloutCommands } from './commands/rollout.ts';
import { registerTokenCommands } from './commands/tokens.ts';
import { registerTrainCommand } from './commands/train.ts';
import { registerTuneCommands } from './commands/tune.ts';
import { registerUpCommand } from './commands/up.ts';
import { createContext, type CliIo } from './context.ts';
import { CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.ts';
import { DEFAULT_DATA_DIR } from './settings.ts';

export const CLI_VERSION = '0.1.0';

const CONNECTION_HELP = `
Server and token, first match wins:
  --server URL / --token TOKEN
  EDGEFLEET_SERVER / EDGEFLEET_TOKEN
  ~/.config/edgefleet/config.json  {"server": "...", "token": "..."}  (EDGEFLEET_CONFIG or --config to move it)
  the control plane's data folder (--data-dir, EDGEFLEET_DATA_DIR, default ${DEFAULT_DATA_DIR}):
    endpoints.json and operator-token, written by edgefleet-control-plane and \`edgefleet up\`
  default server http://127.0.0.1:8080

${EXIT_CODES_HELP}
`;

export function buildProgram(io: CliIo): Command {
  const ctx = createContext(io);
  const program = new Command('edgefleet')
    .description('EdgeFleet operator CLI: devices, profiles, enrollment tokens, training, models, rollouts, reports')
    .version(CLI_VERSION)
    .option('-s, --server <url>', 'control plane URL')
    .option('-t, --token <token>', 'operator token')
    .option('--data-dir <dir>', 'control plane data folder to read endpoints.json and operator-token from')
    .option('--config <file>', 'config file (default ~/.config/edgefleet/config.json)')
    .addHelpText('after', CONNECTION_HELP)
    .showSuggestionAfterError()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });

  registerUpCommand(program, ctx);
  registerDeviceCommands(program, ctx);
  registerProfileCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerTrainCommand(program, ctx);
  registerModelCommands(program, ctx);
  registerRolloutCommands(program, ctx);
  registerTuneCommands(program, ctx);
  registerReportCommands(program, ctx);

  const applyEverywhere = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
    if (cmd !== program) cmd.addHelpText('after', `\n${EXIT_CODES_HELP}\n`);
    cmd.commands.forEach(applyEverywhere);
  };
  applyEverywhere(program);
  return program;
}

/** Runs one command line and returns the exit code; never throws, never calls process.exit. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp();
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      // commander already printed its message
      return e.code === 'commander.executeSubCommandAsync' ? EXIT.server : EXIT.usage;
    }
    if (e instanceof CliError) {
      io.stderr.write(`edgefleet: ${e.message}\n`);
      return e.exitCode;
    }
    io.stderr.write(`edgefleet: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.server;
  }
}
