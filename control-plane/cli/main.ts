import { runCli } from './program.ts';

const interrupted = (): Promise<string> =>
  new Promise((resolve) => {
    const on = (signal: string): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), interrupted });
process.exitCode = code;
// sockets and timers are closed by now; exit anyway so a stray handle cannot keep the CLI alive
process.exit();
