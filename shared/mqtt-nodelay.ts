import type { MqttClient } from 'mqtt';

/**
 * Turns Nagle's algorithm off on an mqtt.js client's socket, now and after every reconnect. mqtt.js opens its TCP
 * socket with Node's default (Nagle on): a small packet (a chunk request, a report, a PUBACK) sent while an earlier one
 * is still unacknowledged waits for that ACK, which the peer's delayed-ACK timer holds for up to 40 ms on Linux. MQTT
 * is request/response at every step, so each such wait stalls the exchange (see the README's delivery section).
 */
export function noDelay(client: MqttClient): MqttClient {
  return onEverySocket(client, (s) => (s as { setNoDelay?: (on: boolean) => unknown } | undefined)?.setNoDelay?.(true));
}

/** Runs `fn` on an mqtt.js client's socket now and on the new socket of every reconnect (mqtt.js opens one each time). */
export function onEverySocket<C extends { stream?: unknown; on(event: 'connect', cb: () => void): unknown }>(client: C, fn: (stream: unknown) => void): C {
  const apply = (): void => fn(client.stream);
  apply();
  client.on('connect', apply);
  return client;
}
