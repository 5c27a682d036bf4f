import type { DeviceStatus, DeviceStore, PresenceOp } from '../store/devices.ts';

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

  constructor(
    private readonly store: DeviceStore,
    private readonly o: PresenceWriterOptions = {},
  ) {
    this.flushMs = o.flushMs ?? 50;
    this.maxBatch = o.maxBatch ?? 2000;
  }

  get pending(): number {
    return this.queue.length;
  }

  enqueue(op: PresenceOp): void {
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
    const changes = this.store.applyBatch(ops, this.o.inBatch);
    this.o.onFlushed?.(ops.length, performance.now() - t0);
    for (const c of changes) this.o.onChanged?.(c);
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
    const changes = this.store.applyBatch(stale.map((deviceId) => ({ kind: 'status', deviceId, status: 'offline', stamp: 'keep', reason: 'missed-heartbeats', at: now })));
    for (const c of changes) this.o.onChanged?.(c);
    return changes.map((c) => c.deviceId);
  }

  stop(): void {
    this.flush();
  }
}
