/** The agent's public surface, for tests and for the engineers wiring the transfer client and model store. */
export { startAgent, AgentConfigError, type AgentHandle, type AgentOptions } from './agent.ts';
export { EnrollmentError, type EnrollmentErrorKind } from './enroll.ts';
export type { AgentEvents } from './session.ts';
export type { AgentCounters, CommandContext, CommandHandlers, DeployCommand, BenchmarkCommand, RollbackCommand, ReportBody } from './commands.ts';
export { UNSUPPORTED_REASON } from './commands.ts';
export { createLogger, silentLogger, type Logger } from './log.ts';
export { probeFacts, probeFactsCached, findTrtexec } from './probe.ts';
export { applyFactsOverride, loadFactsOverrideFile } from './facts-override.ts';
export { runBenchmark, type BenchmarkOptions, type BenchmarkOutcome, type EvalSet } from './benchmark/runner.ts';
export { AGENT_VERSION } from './version.ts';
