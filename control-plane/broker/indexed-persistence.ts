import aedesPersistence from 'aedes-persistence';
import { Readable } from 'node:stream';
import { RetainedIndex } from './retained-index.ts';

type RetainedPacket = { topic: string; payload: Buffer; [k: string]: unknown };

/**
 * aedes' memory persistence with the retained store replaced by a topic trie (see retained-index.ts).
 * Subscriptions, wills and in-flight packets stay with aedes-persistence; only the three retained
 * entry points aedes calls are swapped: storeRetained (PUBLISH with retain), createRetainedStreamCombi
 * (after every SUBSCRIBE) and createRetainedStream.
 */
export function indexedMemoryPersistence(): { persistence: unknown; retained: RetainedIndex<RetainedPacket> } {
  const retained = new RetainedIndex<RetainedPacket>();
  // a CommonJS factory whose typings declare an ES default export
  const memory = aedesPersistence as unknown as () => Record<string, unknown>;
  const p = memory();
  const store = async (pkt: RetainedPacket): Promise<void> => {
    // a copy, as aedes-persistence keeps one: aedes reuses packet objects
    const packet = { ...pkt };
    if (packet.payload.length === 0) retained.delete(packet.topic);
    else retained.set(packet.topic, packet);
  };
  p.storeRetained = (pkt: RetainedPacket, cb?: (e: Error | null) => void): Promise<void> | void => {
    if (!cb) return store(pkt);
    store(pkt).then(() => cb(null), cb);
  };
  p.createRetainedStream = (pattern: string): Readable => Readable.from(retained.match(pattern));
  p.createRetainedStreamCombi = (patterns: string[]): Readable =>
    Readable.from(
      (function* () {
        for (const pattern of patterns) yield* retained.match(pattern);
      })(),
    );
  return { persistence: p, retained };
}
