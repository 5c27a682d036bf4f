/**
 * A brake on guessing broker logins (issue 8 item 11), pure: the caller supplies the clock and does the waiting.
 *
 * Each key (a client id, a username, a source address) holds a leaky count of its failures: one is
 * forgiven every `leak…Ms`. Past a free allowance, every attempt on that key takes the next slot of a
 * per-key gate, and slots are spaced by a delay that doubles with each failure over the allowance, up
 * to a cap; a burst of parallel guesses is therefore served one slot at a time, not all at once after
 * the first wait. A correct login is held like any other attempt on a braked key (answering it early
 * would tell a guesser which try hit), then gets in and clears its client id and username keys.
 *
 * The address key forgives fast (one failure a second, 30 free): a site behind one NAT with a few
 * devices retrying stale passwords is not braked, a guesser at hundreds of tries a second is. The
 * map is bounded: past `maxKeys` the least recently failed key is forgotten.
 */
export type BrakeOptions = {
  freePerLogin: number;
  freePerAddress: number;
  leakPerLoginMs: number;
  leakPerAddressMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** An attempt that would wait longer than this is refused at once instead of holding a socket. */
  maxWaitMs: number;
  maxKeys: number;
};

export const DEFAULT_BRAKE: BrakeOptions = {
  freePerLogin: 3,
  freePerAddress: 30,
  leakPerLoginMs: 60_000,
  leakPerAddressMs: 1000,
  baseDelayMs: 100,
  maxDelayMs: 2000,
  maxWaitMs: 8000, // under the agents' 10 s connect timeout: a held login is answered before the agent gives up
  maxKeys: 10_000,
};

type Entry = { failures: number; updated: number; nextSlot: number };
type Key = { key: string; free: number; leakMs: number };

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
    for (const key of this.keys(k)) {
      const e = this.live(key, now);
      if (!e || e.failures <= key.free) continue;
      const start = Math.max(now, e.nextSlot);
      reserved.push([e, start + this.delay(e.failures - key.free)]);
      wait = Math.max(wait, start - now);
    }
    if (wait > this.o.maxWaitMs) return null;
    for (const [e, next] of reserved) e.nextSlot = next;
    return wait;
  }

  failed(k: BrakeKeys, now: number): void {
    for (const key of this.keys(k)) {
      const e = this.live(key, now) ?? { failures: 0, updated: now, nextSlot: now };
      e.failures++;
      this.entries.delete(key.key); // re-insert: the map's order is least recently failed first
      this.entries.set(key.key, e);
    }
    while (this.entries.size > this.o.maxKeys) this.entries.delete(this.entries.keys().next().value as string);
  }

  succeeded(k: BrakeKeys): void {
    this.entries.delete(`c:${k.clientId}`);
    this.entries.delete(`u:${k.username}`);
  }

  private keys(k: BrakeKeys): Key[] {
    const login = { free: this.o.freePerLogin, leakMs: this.o.leakPerLoginMs };
    const out: Key[] = [{ key: `c:${k.clientId}`, ...login }];
    if (k.username !== k.clientId) out.push({ key: `u:${k.username}`, ...login });
    if (k.address) out.push({ key: `a:${k.address}`, free: this.o.freePerAddress, leakMs: this.o.leakPerAddressMs });
    return out;
  }

  /** The key's entry with its failures leaked down to now; null (and forgotten) once nothing is left. */
  private live(key: Key, now: number): Entry | null {
    const e = this.entries.get(key.key);
    if (!e) return null;
    e.failures = Math.max(0, e.failures - (now - e.updated) / key.leakMs);
    e.updated = now;
    if (e.failures === 0 && e.nextSlot <= now) {
      this.entries.delete(key.key);
      return null;
    }
    return e;
  }

  private delay(over: number): number {
    return Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(Math.max(0, Math.ceil(over) - 1), 30));
  }
}
