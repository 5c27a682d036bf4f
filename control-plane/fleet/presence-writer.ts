import type { DeviceStatus, DeviceStore, PresenceOp } from '../store/devices.ts';

/** The history reason of a will written after its hold (see PresenceWriterOptions.holdMs). */
export const HELD_WILL_REASON = 'will-held';
/** Default hold of a will from a connection never heard coming online. */
export const DEFAULT_WILL_HOLD_MS = 45_000;

export type PresenceWriterOptions = {
  /** How long the first queued op waits for company before the batch is written. */
  flushMs?: number;
  /** A batch this large is written at once, without waiting for the timer. */
  maxBatch?: number;
  onChanged?: (change: { deviceId: string; status: DeviceStatus; reason: string }) => void;
  onFlushed?: (ops: number, ms: number) => void;
  /** More writes per heartbeat, made inside the batch's transaction (the dashboard's health history). */
  inBatch?: (op: Extract<PresenceOp, { kind: 'heartbeat' }>) => void;
  /** A `written` callback threw: reported, and the rest of the batch's callbacks still run. */
  onError?: (error: unknown) => void;
  /**
   * How long a will from a connection never heard coming online (a reconnect that broke before its CONNACK
   * reached the agent) is held before it is written. The agent retries within its backoff window; if its
   * next connection comes online meanwhile (a newer stamp) the will is refused by the stamp rule and the
   * device never shows offline; if not, it is written with reason `will-held`. Wills of connections that
   * did come online are written at once. Default DEFAULT_WILL_HOLD_MS.
   */
  holdMs?: number;
  /** A will was held (`held`), and later written (`written`) or refused because the device came back (`dropped`). */
  onHold?: (deviceId: string, outcome: 'held' | 'written' | 'dropped') => void;
};

/**
 * Births, heartbeats and presence changes, written in batches: everything that arrives within one tick
 * (`flushMs`) is applied in arrival order inside one SQLite transaction. Order is what keeps the
 * presence guarantee (per-connection stamps, see DeviceStore.setStatus): a will queued after a newer
 * `online` is still refused, because both are applied one after the other in the order they came.
 * Anything that reads presence to decide (the missed-heartbeat sweep) flushes first.
 */
export class PresenceWriter {
  private queue: PresenceOp[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly holdMs: number;
  /** At most one held will per device: a device flapping connections cannot grow this past the fleet's size. */
  private readonly holds = new Map<string, NodeJS.Timeout>();
  /**
   * Set by stop(): the database closes next. A will queued just before the stop used to be held by stop's own flush,
   * and its timer wrote to the closed database a hold later (an uncaught "database connection is not open").
   */
  private stopped = false;

  constructor(
    private readonly store: DeviceStore,
    private readonly o: PresenceWriterOptions = {},
  ) {
    this.flushMs = o.flushMs ?? 50;
    this.maxBatch = o.maxBatch ?? 2000;
    this.holdMs = o.holdMs ?? DEFAULT_WILL_HOLD_MS;
  }

  /** Wills being held (see holdMs). */
  get holding(): number {
    return this.holds.size;
  }

  get pending(): number {
    return this.queue.length;
  }

  enqueue(op: PresenceOp): void {
    // after stop nothing is written: the next start learns presence from the broker and the heartbeats
    if (this.stopped) return;
    this.queue.push(op);
    if (this.queue.length >= this.maxBatch) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.flushMs);
    }
  }

  /** Writes everything queued, in one transaction. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.queue.length) return;
    const ops = this.queue;
    this.queue = [];
    const t0 = performance.now();
    const { changed, held } = this.store.applyBatch(ops, this.o.inBatch);
    this.o.onFlushed?.(ops.length, performance.now() - t0);
    for (const c of changed) this.o.onChanged?.(c);
    for (const op of ops) {
      if (op.kind === 'status' && op.reason === HELD_WILL_REASON) this.o.onHold?.(op.deviceId, changed.some((c) => c.deviceId === op.deviceId && c.reason === HELD_WILL_REASON) ? 'written' : 'dropped');
    }
    for (const op of held) this.hold(op);
    for (const op of ops) {
      if (op.kind !== 'birth' || !op.written) continue;
      try {
        op.written();
      } catch (e) {
        this.o.onError?.(e);
      }
    }
  }

  /**
   * Marks online devices not heard from since `before` offline. Queued heartbeats are written first,
   * or a heartbeat received a moment ago could lose to the sweep and the device would flap.
   */
  sweep(before: number, now: number): string[] {
    this.flush();
    const stale = this.store.staleOnline(before);
    if (!stale.length) return [];
    const { changed } = this.store.applyBatch(stale.map((deviceId) => ({ kind: 'status', deviceId, status: 'offline', stamp: 'keep', reason: 'missed-heartbeats', at: now })));
    for (const c of changed) this.o.onChanged?.(c);
    return changed.map((c) => c.deviceId);
  }

  /**
   * Queues the will again after the hold, to be written then like any status: by the stamp rule, so a
   * newer `online` of the device (its next connection) refuses it. Its `at` stays the time it arrived.
   */
  private hold(op: Extract<PresenceOp, { kind: 'status' }>): void {
    // held during stop's own flush: dropped like every other held will at a stop
    if (this.stopped) return this.o.onHold?.(op.deviceId, 'dropped');
    this.o.onHold?.(op.deviceId, 'held');
    // a newer will of the same device replaces the one held: the older connection is superseded either way
    const prev = this.holds.get(op.deviceId);
    if (prev) {
      clearTimeout(prev);
      this.o.onHold?.(op.deviceId, 'dropped');
    }
    const timer = setTimeout(() => {
      if (this.holds.get(op.deviceId) === timer) this.holds.delete(op.deviceId);
      this.enqueue({ ...op, holdUnannounced: false, reason: HELD_WILL_REASON });
    }, this.holdMs); // not unref'd: stop() clears it
    this.holds.set(op.deviceId, timer);
  }

  /**
   * Writes what is queued. Held wills are dropped, not written: on a restart they are exactly the
   * flaps this hold exists to avoid, and a device that never comes back is marked offline by the
   * missed-heartbeat sweep one presence timeout after the next start.
   */
  stop(): void {
    this.stopped = true;
    for (const t of this.holds.values()) clearTimeout(t);
    this.holds.clear();
    this.flush();
  }
}
