/**
 * Retained messages kept in a trie of topic levels, so matching a filter walks only the branches
 * the filter can reach. aedes' default memory persistence tests every retained topic against every
 * SUBSCRIBE filter (O(retained) per SUBSCRIBE); with one retained `status` per device, each device
 * connect cost O(fleet) and registering a fleet cost O(fleet²). Here a device's literal filters
 * (`devices/{id}/cmd`) cost one lookup per level, whatever the fleet size; the control plane's
 * `devices/+/status` still visits every device, which is what it asked for.
 *
 * MQTT 3.1.1 matching: `+` one level (an empty one too), `#` the parent and every level below,
 * and wildcards at the first level never match topics that start with `$` [MQTT-4.7.2-1].
 */
type Node<T> = { children: Map<string, Node<T>>; value: T | undefined };

const node = <T>(): Node<T> => ({ children: new Map(), value: undefined });

export class RetainedIndex<T> {
  private readonly root: Node<T> = node();
  private count = 0;

  get size(): number {
    return this.count;
  }

  set(topic: string, value: T): void {
    let n = this.root;
    for (const level of topic.split('/')) {
      let next = n.children.get(level);
      if (!next) {
        next = node();
        n.children.set(level, next);
      }
      n = next;
    }
    if (n.value === undefined) this.count++;
    n.value = value;
  }

  delete(topic: string): boolean {
    const path: Node<T>[] = [this.root];
    const levels = topic.split('/');
    for (const level of levels) {
      const next = path[path.length - 1]!.children.get(level);
      if (!next) return false;
      path.push(next);
    }
    const leaf = path[path.length - 1]!;
    if (leaf.value === undefined) return false;
    leaf.value = undefined;
    this.count--;
    // prune branches left empty so a churning fleet does not grow the trie forever
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (n.value !== undefined || n.children.size > 0) break;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
    return true;
  }

  get(topic: string): T | undefined {
    let n: Node<T> | undefined = this.root;
    for (const level of topic.split('/')) {
      n = n.children.get(level);
      if (!n) return undefined;
    }
    return n.value;
  }

  /** Every retained value whose topic matches `filter`, each once. */
  *match(filter: string): Generator<T> {
    yield* this.walk(this.root, filter.split('/'), 0);
  }

  private *walk(n: Node<T>, levels: readonly string[], i: number): Generator<T> {
    if (i === levels.length) {
      if (n.value !== undefined) yield n.value;
      return;
    }
    const level = levels[i]!;
    if (level === '#') {
      if (n.value !== undefined && i > 0) yield n.value; // `a/#` matches `a` itself
      for (const [name, child] of n.children) if (!(i === 0 && name.startsWith('$'))) yield* this.all(child);
      return;
    }
    if (level === '+') {
      for (const [name, child] of n.children) if (!(i === 0 && name.startsWith('$'))) yield* this.walk(child, levels, i + 1);
      return;
    }
    const child = n.children.get(level);
    if (child) yield* this.walk(child, levels, i + 1);
  }

  private *all(n: Node<T>): Generator<T> {
    if (n.value !== undefined) yield n.value;
    for (const child of n.children.values()) yield* this.all(child);
  }
}
