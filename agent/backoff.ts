/**
 * Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with "full jitter" by default:
 * each delay is drawn uniformly from [base * (1 - jitter), base]. When a broker restarts, a whole
 * fleet loses its connections in the same millisecond; a ±20 % spread around 0.5 s (what this was)
 * brought all of them back inside 200 ms. Drawing from the whole window spreads the first wave over
 * `initialMs` and every later wave over twice the last one, so retries thin out instead of
 * arriving in lockstep. The cap (30 s) bounds how long a device stays away after a long outage: once
 * the broker is back, every agent is back within one window.
 */
export type BackoffOptions = { initialMs: number; maxMs: number; factor: number; jitter: number };

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 2000, maxMs: 30_000, factor: 2, jitter: 1 };

/** Delay before reconnect attempt `attempt` (0 = first). `random` in [0,1) is injected so the schedule is testable. */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(opts.maxMs, opts.initialMs * Math.pow(opts.factor, Math.max(0, attempt)));
  const jitter = Math.min(1, Math.max(0, opts.jitter));
  return Math.round(base * (1 - jitter) + random() * base * jitter);
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
