/**
 * The one msgId dedup cache (agent commands, fleet session, transfer server): remembers the last
 * `capacity` message ids (QoS 1 re-deliveries repeat an id); the least recently seen is forgotten first.
 */
export class MsgIdDedup {
  private readonly seen = new Set<string>();
  constructor(private readonly capacity = 1024) {
    if (capacity < 1) throw new RangeError('capacity must be at least 1');
  }
  /** True the first time an id is seen, false for a duplicate. */
  firstTime(msgId: string): boolean {
    if (this.seen.has(msgId)) {
      // refresh: an id still being re-delivered stays remembered
      this.seen.delete(msgId);
      this.seen.add(msgId);
      return false;
    }
    this.seen.add(msgId);
    if (this.seen.size > this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return true;
  }
  get size(): number {
    return this.seen.size;
  }
}
