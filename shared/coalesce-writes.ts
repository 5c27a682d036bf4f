import { onEverySocket } from './mqtt-nodelay.ts';

/**
 * Packets written to a stream in one turn of the event loop leave in one `writev` instead of one each.
 *
 * mqtt-packet (under both mqtt.js and aedes) corks the stream for each packet it writes and uncorks it on the next
 * tick. mqtt.js handles incoming packets one per tick, so the PUBACK of each QoS 1 message it receives leaves in a
 * syscall of its own, and so does each message aedes forwards to a client. On the control plane's one connection
 * that carries every device's status, births and heartbeats, those syscalls were the largest single entry of its
 * CPU profile (`writev`, 14.5 % of busy time at 5,000 devices; README "Sizing").
 *
 * This holds one more cork from the first packet of a turn until `setImmediate`, the end of the turn: the packets
 * of that turn go out together, at most a turn later than they would have (Nagle stays off; see mqtt-nodelay.ts).
 * Backpressure is unchanged: `write()` still answers false past the high-water mark and `drain` follows the flush.
 */
export type Corkable = { cork(): void; uncork(): void };

const coalesced = new WeakSet<object>();

export function coalesceWrites(stream: Corkable | null | undefined): void {
  if (!stream || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function' || coalesced.has(stream)) return;
  coalesced.add(stream);
  const cork = stream.cork.bind(stream);
  let held = false;
  const release = (): void => {
    held = false;
    stream.uncork();
  };
  stream.cork = (): void => {
    if (!held) {
      held = true;
      cork();
      setImmediate(release);
    }
    cork();
  };
}

/** Whether coalesceWrites applies to this stream (for tests and logs). */
export function writesCoalesced(stream: object | null | undefined): boolean {
  return !!stream && coalesced.has(stream);
}

/** coalesceWrites on an mqtt.js client's socket, now and on every reconnect. */
export function coalesceClientWrites<C extends { stream?: unknown; on(event: 'connect', cb: () => void): unknown }>(client: C): C {
  return onEverySocket(client, (s) => coalesceWrites(s as Corkable | undefined));
}
