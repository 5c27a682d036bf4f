/** Reconnect delays: exponential from `initialMs`, capped at `maxMs`, each spread by ±`jitter` so a fleet does not reconnect in lockstep. */
export type BackoffOptions = { initialMs: number; maxMs: number; factor: number; jitter: number };

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

/** Delay before reconnect attempt `attempt` (0 = first). `random` in [0,1) is injected so the schedule is testable. */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * Math.pow(opts.factor, Math.max(0, attempt)));
  const spread = base * opts.jitter * (2 * random() - 1);
  return Math.round(Math.min(opts.maxMs, Math.max(0, base + spread)));
}

/** Stateful wrapper: `next()` per failed attempt, `reset()` after a successful connect. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    return backoffDelay(this.attempt++, this.opts, this.random);
  }
  reset(): void {
    this.attempt = 0;
  }
  get attempts(): number {
    return this.attempt;
  }
}
