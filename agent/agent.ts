import type { EventEmitter } from 'node:events';
import type { DeviceFacts } from '../shared/facts.ts';
import type { ModelRef } from '../shared/messages.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { DeliveryAgent, type DeliveryAgentOptions } from './delivery/delivery-agent.ts';
import type { AgentCounters, CommandContext, CommandHandlers } from './commands.ts';
import { enroll, type EnrollOptions } from './enroll.ts';
import { applyFactsOverride } from './facts-override.ts';
import { sharedHealthSampler, type HealthSample } from './health.ts';
import { securePrivateDir } from '../shared/private-dir.ts';
import { ensureStateDir, loadIdentity, resolveDeviceId, type Identity } from './identity.ts';
import { silentLogger, type Logger } from './log.ts';
import { probeFactsCached } from './probe.ts';
import { DeviceSession, type AgentEvents } from './session.ts';
import { AGENT_VERSION } from './version.ts';

export type AgentOptions = {
  /** Required on first start; afterwards the URL stored at enrollment is used when this is absent. */
  brokerUrl?: string | undefined;
  /** Holds device-id, identity.json (0600) and enroll-pending.json. One folder per agent. */
  stateDir: string;
  /** `<tokenId>.<secret>`; needed only while the state folder holds no credential. */
  enrollmentToken?: string | null | undefined;
  /** Default: the id stored in the state folder, else a generated `dev-<12 hex>`. */
  deviceId?: string | null | undefined;
  /** Sent in the birth as `profileHint`. */
  profileHint?: string | null | undefined;
  /** Partial facts deep-merged over the probed (or given) facts: objects merge, arrays and scalars replace. */
  factsOverride?: unknown;
  /** Where the override came from, for error messages (default "factsOverride"). */
  factsOverrideSource?: string | undefined;
  /** Skip probing and use these facts (the override still applies). */
  facts?: DeviceFacts | undefined;
  /** Probe used when `facts` is absent; default: one cached probe per process. */
  probe?: (() => Promise<DeviceFacts>) | undefined;
  /** Default 30 000. */
  heartbeatIntervalMs?: number | undefined;
  /** MQTT keepalive; default 30 s. */
  keepaliveSeconds?: number | undefined;
  agentVersion?: string | undefined;
  /** Lines are bound to `{ deviceId }`. Default: silent. */
  logger?: Logger | undefined;
  /** Replaces the built-in handlers (delivery) entirely; a missing one answers "unsupported". */
  commandHandlers?: CommandHandlers | undefined;
  /**
   * The built-in delivery room (download, model store, benchmark, rollback), used when `commandHandlers` is absent.
   * Given as an object it also takes the `benchmark` command; left out, `benchmark` stays "unsupported" as before.
   * `false` turns delivery off.
   */
  delivery?: DeliveryAgentOptions | false | undefined;
  /** What births and heartbeats report before any handler changes it. */
  currentModel?: ModelRef | null | undefined;
  backoff?: Partial<BackoffOptions> | undefined;
  enrollment?: Partial<Pick<EnrollOptions, 'responseTimeoutMs' | 'requestAttempts' | 'connectDeadlineMs'>> | undefined;
  healthSampler?: (() => Promise<HealthSample>) | undefined;
  /** Aborts an enrollment in progress (e.g. SIGTERM during first start). */
  signal?: AbortSignal | undefined;
};

export type AgentHandle = {
  readonly deviceId: string;
  readonly facts: DeviceFacts;
  /** True when this start enrolled (no credential was stored). */
  readonly enrolledNow: boolean;
  readonly signingPublicKey: string;
  readonly counters: Readonly<AgentCounters>;
  readonly connected: boolean;
  readonly events: EventEmitter<AgentEvents>;
  /** The context command handlers get; lets an embedder report or publish a birth itself. */
  readonly context: CommandContext;
  /** The delivery room (model store, download counters); null when turned off or replaced by `commandHandlers`. */
  readonly delivery: DeliveryAgent | null;
  /** Resolves with the event's payload; `connected` resolves at once when already connected. */
  waitFor<K extends keyof AgentEvents>(event: K, timeoutMs?: number): Promise<AgentEvents[K][0]>;
  publishBirth(): Promise<void>;
  /** graceful (default): retained offline + DISCONNECT. `{ graceful: false }` cuts the socket, as a crash would: the broker sends the will. */
  stop(opts?: { graceful?: boolean }): Promise<void>;
};

/** An error in what the caller passed (bad override, device id conflict, missing token); not worth retrying. */
export class AgentConfigError extends Error {
  override readonly name = 'AgentConfigError';
}

/** Loads or enrolls the identity, then starts the device session. Resolves once the session is started (not yet connected). */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  const baseLogger = options.logger ?? silentLogger;
  const stateDir = options.stateDir;
  try {
    ensureStateDir(stateDir);
    // the state folder holds the device password and the models: owner only (issue 8 item 4)
    const fixed = securePrivateDir(stateDir);
    if (fixed.fixedDir || fixed.fixedEntries.length) baseLogger.warn('state folder was readable by other users; fixed to 0700 (files 0600)', { stateDir, fixedDir: fixed.fixedDir, fixedFiles: fixed.fixedEntries.length });
  } catch (e) {
    throw new AgentConfigError(`${stateDir}: cannot create or secure the state folder (${(e as Error).message})`);
  }
  const idResult = resolveDeviceId(stateDir, options.deviceId ?? null);
  if (!idResult.ok) throw new AgentConfigError(idResult.error);
  const deviceId = idResult.value;
  const logger = baseLogger.child({ deviceId });

  let facts = options.facts ?? (await (options.probe ?? (async () => (await probeFactsCached()).facts))());
  if (options.factsOverride !== undefined && options.factsOverride !== null) {
    const merged = applyFactsOverride(facts, options.factsOverride, options.factsOverrideSource ?? 'factsOverride');
    if (!merged.ok) throw new AgentConfigError(merged.error);
    facts = merged.value;
  }

  const agentVersion = options.agentVersion ?? AGENT_VERSION;
  const stored = loadIdentity(stateDir);
  if (!stored.ok) throw new AgentConfigError(stored.error);
  let identity: Identity;
  let enrolledNow = false;
  if (stored.value) {
    identity = stored.value;
    logger.info('identity loaded', { enrolledAt: identity.enrolledAt });
  } else {
    if (!options.enrollmentToken) throw new AgentConfigError(`${stateDir}: no device credential stored and no enrollment token given (--enrollment-token / EDGEFLEET_ENROLLMENT_TOKEN)`);
    if (!options.brokerUrl) throw new AgentConfigError('no broker URL given (--broker-url / EDGEFLEET_BROKER_URL) and none stored');
    identity = await enroll({
      brokerUrl: options.brokerUrl,
      stateDir,
      deviceId,
      enrollmentToken: options.enrollmentToken,
      agentVersion,
      logger,
      ...options.enrollment,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    enrolledNow = true;
  }

  const delivery = options.commandHandlers || options.delivery === false ? null : new DeliveryAgent(stateDir, { ...options.delivery });
  let handlers: CommandHandlers = options.commandHandlers ?? {};
  if (delivery) {
    const { benchmark, ...rest } = delivery.handlers;
    handlers = options.delivery ? { ...rest, benchmark } : rest;
  }

  const session = new DeviceSession({
    brokerUrl: options.brokerUrl ?? identity.brokerUrl,
    identity,
    stateDir,
    agentVersion,
    facts,
    profileHint: options.profileHint ?? null,
    currentModel: options.currentModel ?? delivery?.store.active() ?? null,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
    keepaliveSeconds: options.keepaliveSeconds ?? 30,
    backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    handlers,
    logger,
    sampleHealth: options.healthSampler ?? sharedHealthSampler(),
  });
  // unfinished downloads of an earlier run go on once the session can ask for chunks; after a reconnect, what was
  // outstanding is asked for again at once (answers sent to the old connection are gone with it)
  if (delivery) {
    let first = true;
    session.on('connected', () => {
      if (first) delivery.resume(session.commandContext);
      else delivery.reconnected();
      first = false;
    });
  }
  session.start();

  return {
    deviceId,
    facts,
    enrolledNow,
    signingPublicKey: identity.signingPublicKey,
    get counters() {
      return { ...session.counters };
    },
    get connected() {
      return session.ready;
    },
    events: session,
    context: session.commandContext,
    delivery,
    waitFor: (event, timeoutMs = 10_000) => waitForEvent(session, event, timeoutMs),
    publishBirth: () => session.publishBirth(),
    stop: async (opts) => {
      await delivery?.close();
      await session.stop(opts);
    },
  };
}

function waitForEvent<K extends keyof AgentEvents>(session: DeviceSession, event: K, timeoutMs: number): Promise<AgentEvents[K][0]> {
  if (event === 'connected' && session.ready) {
    return Promise.resolve({ seq: session.counters.connects - 1 } as AgentEvents[K][0]);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      session.off(event, listener as never);
      reject(new Error(`${session.deviceId}: no "${event}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: AgentEvents[K][0]): void => {
      clearTimeout(timer);
      resolve(payload);
    };
    session.once(event, listener as never);
  });
}
