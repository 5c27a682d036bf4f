/**
 * One fan-out wave of one transfer, as plain data: which chunks went out on the shared topic and when each device
 * started listening. No I/O and no clock: the transfer server asks for a plan per request and reports each publish.
 *
 * Ordering argument (why "published after it joined" means "it gets it"): an agent subscribes to the transfer topic
 * and waits for the SUBACK before it sends its `join`, so the broker knows the subscription before the control plane
 * sees the join; anything the control plane publishes after reading the join reaches that subscription. Chunks
 * published before the join may have missed it, so they go to that device alone (the repair path).
 */
export type WavePlan = {
  /** Publish once on the shared topic: no one asked for these yet in this wave. */
  broadcast: number[];
  /** Published before this device joined: send to it alone. */
  unicast: number[];
  /** Already on its way to this device (pending, or published after it joined and not asked for again). */
  skipped: number[];
};

export class FanoutWave {
  /** A logical clock: joins and publishes are ordered by it, never by wall time. */
  private tick = 0;
  private readonly published = new Map<number, number>();
  private readonly pending = new Set<number>();
  private readonly joined = new Map<string, number>();
  private last: number;

  constructor(
    readonly transferId: string,
    readonly startedAt: number,
  ) {
    this.last = startedAt;
  }

  /**
   * `join` (first ask since subscribing) restarts the device's clock; a device never seen joins on its first ask too.
   * `repair`: the device asks again, so a chunk already published (even after it joined) went missing: it gets it alone.
   */
  plan(deviceId: string, chunks: readonly number[], mode: 'join' | 'next' | 'repair', now: number): WavePlan {
    this.last = now;
    let joinedAt = this.joined.get(deviceId);
    if (mode === 'join' || joinedAt === undefined) {
      joinedAt = ++this.tick;
      this.joined.set(deviceId, joinedAt);
    }
    const out: WavePlan = { broadcast: [], unicast: [], skipped: [] };
    for (const i of chunks) {
      const at = this.published.get(i);
      if (this.pending.has(i)) out.skipped.push(i);
      else if (at === undefined) {
        this.pending.add(i);
        out.broadcast.push(i);
      } else if (at < joinedAt || mode === 'repair') out.unicast.push(i);
      else out.skipped.push(i);
    }
    return out;
  }

  /** Call right before handing chunk `i` to the MQTT client for the shared topic. */
  publishing(i: number): void {
    this.pending.delete(i);
    this.published.set(i, ++this.tick);
  }

  /** The publish failed: the next fresh ask for `i` broadcasts it again. */
  failed(i: number): void {
    this.pending.delete(i);
    this.published.delete(i);
  }

  get lastActivity(): number {
    return this.last;
  }

  get chunksPublished(): number {
    return this.published.size;
  }

  hasDevice(deviceId: string): boolean {
    return this.joined.has(deviceId);
  }

  get devices(): number {
    return this.joined.size;
  }
}
