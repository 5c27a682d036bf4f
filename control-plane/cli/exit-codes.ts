/** The CLI's documented exit codes; scripts rely on them. */
export const EXIT = {
  ok: 0,
  /** The server failed (5xx, 409 conflict, or an answer the CLI cannot read). */
  server: 1,
  /** Bad command line, or a request the server refused as bad (400; its message is printed). */
  usage: 2,
  /** No answer from the server: not running, wrong --server, network down. */
  unreachable: 3,
  /** Missing or wrong operator token (401/403). */
  auth: 4,
  /** Unknown id, or an API this server build does not have (404). */
  notFound: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  server error (5xx, conflict, unreadable answer)
  2  usage error, or the server refused the request as bad (400; its message is printed)
  3  server unreachable
  4  missing or wrong operator token (401)
  5  not found: unknown id, or an API this server build does not have (404)`;

/** An error the CLI reports as one line on stderr and an exit code, never a stack trace. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}
