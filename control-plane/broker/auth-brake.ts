/**
 * A brake on guessing broker logins (issue 8 item 11), pure: the caller supplies the clock and does the waiting.
 *
 * Each key (a client id, a username, a source address) counts its recent failures. Past a free
 * allowance, every attempt on that key takes the next slot of a per-key gate, and slots are spaced by
 * a delay that doubles with each failure up to a cap, so a burst of parallel guesses is served one
 * slot at a time, not all at once after the first wait. A correct login is held like any other attempt
 * on a braked key (so answering fast would not tell a guesser it hit), then gets in and clears its
 * client id and username keys. The map is bounded: past `maxKeys` the oldest key is forgotten.
 */
export type BrakeOptions = {
  /** Failures a client id or username may have before its attempts are slowed. */
  freePerLogin: number;
  /** Failures one source address may have (devices behind one NAT share it). */
  freePerAddress: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** An attempt that would wait longer than this is refused at once instead of holding a socket. */
  maxWaitMs: number;
  /** A key with no failure for this long starts afresh. */
  forgetAfterMs: number;
  maxKeys: number;
};

export const DEFAULT_BRAKE: BrakeOptions = {
  freePerLogin: 3,
  freePerAddress: 20,
  baseDelayMs: 100,
  maxDelayMs: 2000,
  maxWaitMs: 20_000,
  forgetAfterMs: 10 * 60_000,
  maxKeys: 10_000,
};

type Entry = { failures: number; lastFailure: number; nextSlot: number };

export type BrakeKeys = { clientId: string; username: string; address: string | null };

export class AuthBrake {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: BrakeOptions = DEFAULT_BRAKE) {}

  get size(): number {
    return this.entries.size;
  }

  /** Milliseconds to hold this attempt before checking it, or null to refuse it now. */
  admit(k: BrakeKeys, now: number): number | null {
    let wait = 0;
    const reserved: [Entry, number][] = [];
    for (const [key, free] of this.keys(k)) {
      const e = this.live(key, now);
      if (!e || e.failures <= free) continue;
      const start = Math.max(now, e.nextSlot);
      reserved.push([e, start + this.delay(e.failures - free)]);
      wait = Math.max(wait, start - now);
    }
    if (wait > this.o.maxWaitMs) return null;
    for (const [e, next] of reserved) e.nextSlot = next;
    return wait;
  }

  failed(k: BrakeKeys, now: number): void {
    for (const [key] of this.keys(k)) {
      const e = this.live(key, now) ?? { failures: 0, lastFailure: now, nextSlot: now };
      e.failures++;
      e.lastFailure = now;
      this.entries.delete(key); // re-insert: the map's order is least recently failed first
      this.entries.set(key, e);
    }
    while (this.entries.size > this.o.maxKeys) this.entries.delete(this.entries.keys().next().value as string);
  }

  succeeded(k: BrakeKeys): void {
    this.entries.delete(`c:${k.clientId}`);
    this.entries.delete(`u:${k.username}`);
  }

  private keys(k: BrakeKeys): [string, number][] {
    const out: [string, number][] = [[`c:${k.clientId}`, this.o.freePerLogin]];
    if (k.username !== k.clientId) out.push([`u:${k.username}`, this.o.freePerLogin]);
    if (k.address) out.push([`a:${k.address}`, this.o.freePerAddress]);
    return out;
  }

  private live(key: string, now: number): Entry | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (now - e.lastFailure > this.o.forgetAfterMs) {
      this.entries.delete(key);
      return null;
    }
    return e;
  }

  private delay(over: number): number {
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over - 1, 30));
  }
}
