import { StatusSchema } from '../../shared/messages.ts';
import { parseTopic } from '../../shared/topics.ts';

/** The connection stamp an agent's will carries (`offline` status, `ts`), or null for any other will or none. */
export function willStamp(will: { topic: string; payload: Buffer | string } | null | undefined): number | null {
  if (!will) return null;
  const t = parseTopic(will.topic);
  if (t?.kind !== 'device' || t.channel !== 'status') return null;
  try {
    const p = StatusSchema.safeParse(JSON.parse(will.payload.toString()));
    return p.success && p.data.state === 'offline' ? p.data.ts : null;
  } catch {
    return null;
  }
}

/**
 * A CONNECT older than the device's live connection (its will's stamp is lower) is an attempt the agent
 * already gave up on: on a starved host the broker can read a CONNECT after its agent stopped waiting for
 * the CONNACK (30 s) and had connected again. Let through, it takes over the agent's newer connection
 * (MQTT's same-client-id rule), whose will then records the device offline although it is there.
 * Unknown stamps (no will, another payload) never count as stale: the ordinary takeover applies.
 */
export function isStaleConnect(incoming: number | null, live: number | null): boolean {
  return incoming !== null && live !== null && incoming < live;
}
