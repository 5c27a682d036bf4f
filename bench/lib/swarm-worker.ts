/**
 * One process of simulated agents for bench/fleet-scale.ts (several agents per process). Started with
 * SWARM (JSON: SwarmOptions) in the environment; reports its state over IPC every second; on "stop"
 * it stops its agents gracefully and exits. SIGKILL is the mass kill: the OS closes every socket.
 */
import type { AgentHandle } from '../../agent/index.ts';
import { startSwarm, type SwarmOptions } from '../../test/helpers/agent-swarm.ts';

export type WorkerReport = { ready: number; started: number; heartbeatsSent: number; connects: number; reconnectDelays: number[]; reconnectAt: number[]; connectFailed: Record<string, number> };
/** One agent's connection events (newest last), asked for by device id: how the bench explains an offline record. */
export type TraceEvent = { t: number; ev: 'connected' | 'disconnected' | 'connect-failed' | 'reconnect-scheduled'; detail: string };
export type TraceReply = { traces: Record<string, TraceEvent[]> };
const TRACE_KEEP = 40;

const o = JSON.parse(process.env['SWARM'] ?? '{}') as SwarmOptions;
const agents: AgentHandle[] = [];
const traces = new Map<string, TraceEvent[]>();
const connectFailed: Record<string, number> = {};
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
    connectFailed,
  };
  process.send?.(r);
};
const timer = setInterval(send, 1000);
// the bench went away: take the agents down with it
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  if (typeof m === 'object' && m !== null && 'trace' in m) {
    const ids = (m as { trace: string[] }).trace;
    const reply: TraceReply = { traces: Object.fromEntries(ids.filter((id) => traces.has(id)).map((id) => [id, traces.get(id)!])) };
    process.send?.(reply);
    return;
  }
  if (m !== 'stop') return;
  clearInterval(timer);
  void Promise.all(agents.map((a) => a.stop().catch(() => {}))).then(() => process.exit(0));
});
const watch = (a: AgentHandle): void => {
  agents.push(a);
  const trace: TraceEvent[] = [];
  traces.set(a.deviceId, trace);
  const note = (ev: TraceEvent['ev'], detail: string): void => {
    trace.push({ t: Date.now(), ev, detail });
    if (trace.length > TRACE_KEEP) trace.shift();
  };
  a.events.on('connected', ({ seq }) => note('connected', `seq ${seq}`));
  a.events.on('disconnected', ({ reason }) => note('disconnected', reason));
  a.events.on('connect-failed', ({ afterMs, reason, stamp }) => {
    note('connect-failed', `${reason} after ${afterMs} ms (stamp ${stamp})`);
    connectFailed[reason] = (connectFailed[reason] ?? 0) + 1;
  });
  a.events.on('reconnect-scheduled', ({ delayMs, attempt }) => note('reconnect-scheduled', `attempt ${attempt} in ${delayMs} ms`));
  a.events.on('reconnect-scheduled', ({ delayMs }) => reconnectDelays.push(delayMs));
  a.events.on('connected', ({ seq }) => {
    if (seq > 0) reconnectAt.push(Date.now());
  });
};
// agents are counted as they start: a swarm still enrolling reports its heartbeats too
await startSwarm({ ...o, onStarted: watch });
send();
