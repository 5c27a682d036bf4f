/**
 * One process of simulated agents for bench/fleet-scale.ts (several agents per process). Started with
 * SWARM (JSON: SwarmOptions) in the environment; reports its state over IPC every second; on "stop"
 * it stops its agents gracefully and exits. SIGKILL is the mass kill: the OS closes every socket.
 */
import type { AgentHandle } from '../../agent/index.ts';
import { startSwarm, type SwarmOptions } from '../../test/helpers/agent-swarm.ts';

export type WorkerReport = { ready: number; started: number; heartbeatsSent: number; connects: number; reconnectDelays: number[]; reconnectAt: number[] };

const o = JSON.parse(process.env['SWARM'] ?? '{}') as SwarmOptions;
const agents: AgentHandle[] = [];
const reconnectDelays: number[] = [];
const reconnectAt: number[] = [];
const send = (): void => {
  const r: WorkerReport = {
    ready: agents.filter((a) => a?.connected).length,
    started: agents.filter(Boolean).length,
    heartbeatsSent: agents.reduce((n, a) => n + (a?.counters.heartbeatsSent ?? 0), 0),
    connects: agents.reduce((n, a) => n + (a?.counters.connects ?? 0), 0),
    reconnectDelays: reconnectDelays.splice(0),
    reconnectAt: reconnectAt.splice(0),
  };
  process.send?.(r);
};
const timer = setInterval(send, 1000);
// the bench went away: take the agents down with it
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  void Promise.all(agents.map((a) => a.stop().catch(() => {}))).then(() => process.exit(0));
});
const watch = (a: AgentHandle): void => {
  agents.push(a);
  a.events.on('reconnect-scheduled', ({ delayMs }) => reconnectDelays.push(delayMs));
  a.events.on('connected', ({ seq }) => {
    if (seq > 0) reconnectAt.push(Date.now());
  });
};
// agents are counted as they start: a swarm still enrolling reports its heartbeats too
await startSwarm({ ...o, onStarted: watch });
send();
