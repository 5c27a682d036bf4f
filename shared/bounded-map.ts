/**
 * A Map that never holds more than `max` entries: setting a new key beyond that drops the oldest one (insertion order;
 * `touch` moves a key to the newest end). Every per-device or per-id map fed by what devices send is one of these
 * (issue 8 item 8: 200,000 unknown transfer ids grew an unbounded map by 47 MiB for good).
 */
export class BoundedMap<K, V> {
  private readonly m = new Map<K, V>();
  evicted = 0;

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap max must be a positive integer, got ${max}`);
  }

  get size(): number {
    return this.m.size;
  }

  get(k: K): V | undefined {
    return this.m.get(k);
  }

  has(k: K): boolean {
    return this.m.has(k);
  }

  set(k: K, v: V): this {
    if (!this.m.has(k) && this.m.size >= this.max) {
      const oldest = this.m.keys().next();
      if (!oldest.done) {
        this.m.delete(oldest.value);
        this.evicted++;
      }
    }
    this.m.set(k, v);
    return this;
  }

  /** The value for `k`, created with `make` when absent. */
  getOrSet(k: K, make: () => V): V {
    const v = this.m.get(k);
    if (v !== undefined) return v;
    const nv = make();
    this.set(k, nv);
    return nv;
  }

  /** Marks `k` as recently used so it is evicted last. */
  touch(k: K): void {
    const v = this.m.get(k);
    if (v === undefined) return;
    this.m.delete(k);
    this.m.set(k, v);
  }

  delete(k: K): boolean {
    return this.m.delete(k);
  }

  clear(): void {
    this.m.clear();
  }

  entries(): IterableIterator<[K, V]> {
    return this.m.entries();
  }
}
