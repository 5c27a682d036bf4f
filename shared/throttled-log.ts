import { BoundedMap } from './bounded-map.ts';
import type { LogFields, Logger } from './log.ts';

/**
 * Logs repeated rejections of one kind from one source once per interval, with how many were left out
 * (issue 8 item 8: each refused transfer request wrote a 316-byte line, 67 MB of log under a flood). The caller's
 * metric still counts every one. Keys are bounded: a flood of new sources cannot grow memory either.
 *
 * The first rejection of a (source, reason) is logged at once; further ones within `intervalMs` only count; the next
 * one after the interval is logged with `repeated: n` (the count left out since the last line). Counts of sources
 * that go quiet are flushed by `sweep`, which runs at most once per interval from `warn` itself (no timer to stop).
 */
export class ThrottledLog {
  private readonly entries: BoundedMap<string, { loggedAt: number; repeated: number; msg: string; fields: LogFields }>;
  private lastSweep: number;
  /** Lines not written (counted in the next line for their key). */
  suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly opts: { intervalMs?: number; maxKeys?: number; now?: () => number } = {},
  ) {
    this.entries = new BoundedMap(opts.maxKeys ?? 10_000);
    this.lastSweep = this.now();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private get interval(): number {
    return this.opts.intervalMs ?? 60_000;
  }

  warn(msg: string, source: string, reason: string, fields: LogFields = {}): void {
    const now = this.now();
    if (now - this.lastSweep >= this.interval) this.sweep(now);
    const key = `${source}\0${reason}`;
    const e = this.entries.get(key);
    if (e && now - e.loggedAt < this.interval) {
      e.repeated++;
      e.fields = fields;
      this.suppressed++;
      return;
    }
    this.log.warn(msg, { ...fields, ...(e && e.repeated > 0 ? { repeated: e.repeated, intervalMs: this.interval } : {}) });
    this.entries.delete(key);
    this.entries.set(key, { loggedAt: now, repeated: 0, msg, fields });
  }

  /** Writes one summary line per key whose interval is over with rejections left out, and forgets quiet keys. */
  sweep(now = this.now()): void {
    this.lastSweep = now;
    for (const [key, e] of [...this.entries.entries()]) {
      if (now - e.loggedAt < this.interval) continue;
      if (e.repeated > 0) this.log.warn(e.msg, { ...e.fields, repeated: e.repeated, intervalMs: this.interval });
      this.entries.delete(key);
    }
  }

  get keys(): number {
    return this.entries.size;
  }
}
