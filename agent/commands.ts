import { CommandSchema, parsePayload, type Command, type ModelRef, type Report } from '../shared/messages.ts';
import type { MsgIdDedup } from '../shared/dedup.ts';
import type { Logger } from './log.ts';

export type DeployCommand = Extract<Command, { cmd: 'deploy' }>;
export type BenchmarkCommand = Extract<Command, { cmd: 'benchmark' }>;
export type RollbackCommand = Extract<Command, { cmd: 'rollback' }>;
export type EvaluateCommand = Extract<Command, { cmd: 'evaluate' }>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A report without its envelope (v, msgId, ts): the session adds those. */
export type ReportBody = DistributiveOmit<Report, 'v' | 'msgId' | 'ts'>;

/** What a command handler may do on the device's behalf. */
export type CommandContext = {
  deviceId: string;
  stateDir: string;
  logger: Logger;
  /** The control plane's ed25519 key pinned at enrollment; verify manifests with shared/signing.ts `verifyManifest`. */
  signingPublicKey: string;
  /** Validates with ReportSchema and publishes on `devices/{id}/report` (QoS 1). */
  report(body: ReportBody): Promise<void>;
  /**
   * Publishes an `XferRequestSchema` message on `devices/{id}/xfer/req`. `ask.shared`: the download listens on the
   * transfer's shared topic (the session marks the ask `join`/`next`/`repair` only while that subscription holds on
   * the current connection); `ask.again`: these chunks were asked for before. Without `ask`: the device's own topic.
   */
  requestChunks(transferId: string, chunks: number[], ask?: { shared: boolean; again: boolean }): Promise<void>;
  /** Subscribes to `transfers/{id}/data` (made again after a reconnect); false when the broker refuses (not granted). */
  listenTransfer?(transferId: string): Promise<boolean>;
  unlistenTransfer?(transferId: string): Promise<void>;
  activeModel(): ModelRef | null;
  /** Changes what heartbeats and births report as the active model. */
  setActiveModel(model: ModelRef | null): void;
  publishBirth(): Promise<void>;
};

/**
 * The seam for the transfer client, model store and benchmark runner. Handlers run off the MQTT message callback
 * (not awaited by it); a thrown error is logged and counted, never fatal.
 */
export type CommandHandlers = {
  deploy?: (cmd: DeployCommand, ctx: CommandContext) => Promise<void> | void;
  benchmark?: (cmd: BenchmarkCommand, ctx: CommandContext) => Promise<void> | void;
  rollback?: (cmd: RollbackCommand, ctx: CommandContext) => Promise<void> | void;
  /** Tuning: download a candidate, benchmark it, report, delete it; never activate. */
  evaluate?: (cmd: EvaluateCommand, ctx: CommandContext) => Promise<void> | void;
  /** Raw `xfer/data` and `transfers/{id}/data` frames (binary chunk header + bytes); the transfer client parses them. */
  transferData?: (payload: Buffer, ctx: CommandContext) => Promise<void> | void;
};

export type AgentCounters = {
  connects: number;
  disconnects: number;
  birthsSent: number;
  heartbeatsSent: number;
  commandsReceived: number;
  commandsInvalid: number;
  commandsDuplicate: number;
  commandsHandled: number;
  commandsFailed: number;
  transferFrames: number;
  publishErrors: number;
};

export const newCounters = (): AgentCounters => ({
  connects: 0,
  disconnects: 0,
  birthsSent: 0,
  heartbeatsSent: 0,
  commandsReceived: 0,
  commandsInvalid: 0,
  commandsDuplicate: 0,
  commandsHandled: 0,
  commandsFailed: 0,
  transferFrames: 0,
  publishErrors: 0,
});

export type CommandIntake = { kind: 'accepted'; command: Command } | { kind: 'invalid'; reason: string } | { kind: 'duplicate'; msgId: string };

/** Parses and de-duplicates one `cmd` payload and counts the outcome. Pure but for the dedup memory and counters. */
export function intakeCommand(payload: Uint8Array | string, dedup: MsgIdDedup, counters: AgentCounters): CommandIntake {
  counters.commandsReceived++;
  const parsed = parsePayload(CommandSchema, payload);
  if (!parsed.ok) {
    counters.commandsInvalid++;
    return { kind: 'invalid', reason: parsed.error };
  }
  if (!dedup.firstTime(parsed.value.msgId)) {
    counters.commandsDuplicate++;
    return { kind: 'duplicate', msgId: parsed.value.msgId };
  }
  return { kind: 'accepted', command: parsed.value };
}

export const UNSUPPORTED_REASON = 'not supported by this agent build';

/** The model a command concerns, for install-state reports; null when it names none. */
export function commandModel(cmd: Command, active: ModelRef | null): ModelRef | null {
  switch (cmd.cmd) {
    case 'deploy':
      return { modelId: cmd.manifest.modelId, version: cmd.manifest.version };
    case 'benchmark':
      return cmd.model;
    case 'rollback':
      return cmd.to ?? active;
    case 'evaluate':
      return { modelId: cmd.manifest.modelId, version: cmd.manifest.version };
    case 'rebirth':
      return null;
  }
}

/** Used only when the embedder gives no handler: say plainly that this build cannot do it. */
export async function reportUnsupported(cmd: DeployCommand | BenchmarkCommand | RollbackCommand | EvaluateCommand, ctx: CommandContext): Promise<void> {
  const model = commandModel(cmd, ctx.activeModel());
  ctx.logger.warn('command not supported by this agent build', { cmd: cmd.cmd, msgId: cmd.msgId });
  if (!model) return;
  if (cmd.cmd === 'evaluate') {
    await ctx.report({ kind: 'evaluation', tuningId: cmd.tuningId, model, state: 'failed', result: null, reason: UNSUPPORTED_REASON, loadPerCore: null });
    return;
  }
  await ctx.report({
    kind: 'install-state',
    rolloutId: 'rolloutId' in cmd ? cmd.rolloutId : null,
    model,
    state: 'failed',
    progress: null,
    reason: UNSUPPORTED_REASON,
  });
}
