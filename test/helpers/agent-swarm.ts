import { join } from 'node:path';
import { startAgent, type AgentHandle, type AgentOptions } from '../../agent/index.ts';
import type { HealthSample } from '../../agent/health.ts';
import { SIMULATED } from './simulated-devices.ts';

/** A fixed health sample: many agents in one process must not each probe the host every beat. */
const HEALTH: HealthSample = { load1: 0.5, cpuPercent: 10, memUsedBytes: 1e9, memTotalBytes: 8e9, temperatureC: 45 };

export type SwarmOptions = {
  brokerUrl: string;
  token: string;
  count: number;
  stateRoot: string;
  idPrefix: string;
  heartbeatIntervalMs: number;
  /** Agents starting (enrolling) at once. */
  concurrency?: number;
  /** Index offset, to add agents to a running swarm. */
  from?: number;
  extra?: Partial<AgentOptions>;
  /** Each agent as soon as it has started (a bench reports on a swarm still enrolling). */
  onStarted?: (agent: AgentHandle) => void;
};

export const swarmDeviceId = (prefix: string, i: number): string => `${prefix}-${SIMULATED[i % SIMULATED.length]!.kind}-${String(i).padStart(5, '0')}`;

/**
 * Many of the project's own agents in this process (several agents per process, as a bench or a
 * test host can afford): facts of the five simulated device kinds, delivery off, a fixed health
 * sample. A second call with the same stateRoot and prefix restarts the same identities (no enrollment).
 */
export async function startSwarm(o: SwarmOptions): Promise<AgentHandle[]> {
  const from = o.from ?? 0;
  const out: AgentHandle[] = new Array(o.count);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const k = next++;
      if (k >= o.count) return;
      const i = from + k;
      out[k] = await startAgent({
        brokerUrl: o.brokerUrl,
        stateDir: join(o.stateRoot, `a${i}`),
        enrollmentToken: o.token,
        deviceId: swarmDeviceId(o.idPrefix, i),
        facts: SIMULATED[i % SIMULATED.length]!.facts,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        healthSampler: async () => HEALTH,
        delivery: false,
        // the enrollment answer can queue behind thousands of others on a loaded host
        enrollment: { responseTimeoutMs: 60_000, connectDeadlineMs: 600_000 },
        ...o.extra,
      });
      o.onStarted?.(out[k]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 50, o.count)) }, worker));
  return out;
}
