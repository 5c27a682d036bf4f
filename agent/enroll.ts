import mqtt, { type MqttClient } from 'mqtt';
import { EnrollRequestSchema, EnrollResponseSchema, newMsgId, parsePayload, PROTOCOL_VERSION, type EnrollResponse } from '../shared/messages.ts';
import { enrollClientId, enrollRequestTopic, enrollResponseTopic, enrollUsername, splitEnrollmentToken } from '../shared/topics.ts';
import { Backoff } from './backoff.ts';
import { clearPendingEnrollment, pendingEnrollmentPassword, saveIdentity, type Identity } from './identity.ts';
import { errorMessage, type Logger } from './log.ts';
import { isAuthRefusal } from './mqtt-errors.ts';
import { CONNECT_TIMEOUT_MS } from './session.ts';

export type EnrollmentErrorKind = 'bad-token' | 'token-rejected' | 'enrollment-rejected' | 'timeout' | 'unreachable' | 'aborted';

/** An enrollment that cannot succeed by retrying; the CLI exits with code 2 for these. */
export class EnrollmentError extends Error {
  override readonly name = 'EnrollmentError';
  constructor(
    readonly kind: EnrollmentErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export type EnrollOptions = {
  brokerUrl: string;
  stateDir: string;
  deviceId: string;
  enrollmentToken: string;
  agentVersion: string;
  logger: Logger;
  /** How long to wait for the answer to one request before sending it again. */
  responseTimeoutMs?: number;
  /** Requests sent on one connection before giving up. */
  requestAttempts?: number;
  /** Keep retrying an unreachable broker (with backoff) for this long. */
  connectDeadlineMs?: number;
  signal?: AbortSignal;
};

type AttemptOutcome = { kind: 'answer'; response: EnrollResponse } | { kind: 'network'; error: string } | { kind: 'no-answer' };

/**
 * First start: log in with the fleet enrollment token, offer a self-chosen secret, and keep the answer
 * (the control plane's signing key) as this device's identity.
 */
export async function enroll(opts: EnrollOptions): Promise<Identity> {
  const token = splitEnrollmentToken(opts.enrollmentToken);
  if (!token) throw new EnrollmentError('bad-token', 'enrollment token is malformed: expected "<tokenId>.<secret>" (tokenId 6-32 of a-z0-9, secret 16-128 of A-Za-z0-9_-)');
  const log = opts.logger.child({ tokenId: token.tokenId });
  const password = pendingEnrollmentPassword(opts.stateDir, opts.deviceId);
  const deadline = Date.now() + (opts.connectDeadlineMs ?? 120_000);
  const backoff = new Backoff();

  for (;;) {
    if (opts.signal?.aborted) throw new EnrollmentError('aborted', 'enrollment aborted');
    const outcome = await attempt(opts, token, password, log);
    if (outcome.kind === 'answer') {
      const res = outcome.response;
      if (!res.ok) throw new EnrollmentError('enrollment-rejected', `the control plane refused enrollment of "${opts.deviceId}": ${res.error}`);
      const identity: Identity = {
        deviceId: opts.deviceId,
        password,
        signingPublicKey: res.signingPublicKey,
        enrolledAt: Date.now(),
        brokerUrl: opts.brokerUrl,
      };
      saveIdentity(opts.stateDir, identity);
      clearPendingEnrollment(opts.stateDir);
      log.info('enrolled', { brokerUrl: opts.brokerUrl });
      return identity;
    }
    if (outcome.kind === 'no-answer') {
      throw new EnrollmentError('timeout', `no enrollment answer from the control plane on ${enrollResponseTopic(opts.deviceId)}; is it running and connected to ${opts.brokerUrl}?`);
    }
    const delay = backoff.next();
    if (Date.now() + delay > deadline) throw new EnrollmentError('unreachable', `cannot reach broker ${opts.brokerUrl}: ${outcome.error}`);
    log.warn('enrollment: broker unreachable, retrying', { error: outcome.error, retryInMs: delay });
    await sleep(delay, opts.signal);
  }
}

async function attempt(opts: EnrollOptions, token: { tokenId: string; secret: string }, password: string, log: Logger): Promise<AttemptOutcome> {
  const client = mqtt.connect(opts.brokerUrl, {
    protocolVersion: 4,
    clientId: enrollClientId(opts.deviceId),
    username: enrollUsername(token.tokenId),
    password: token.secret,
    clean: true,
    reconnectPeriod: 0,
    // see CONNECT_TIMEOUT_MS: a loaded broker's late CONNACK is not a reason to start over
    connectTimeout: CONNECT_TIMEOUT_MS,
    resubscribe: false,
  });
  let cleanup = (): void => {};
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new EnrollmentError('aborted', 'enrollment aborted'));
      const onClose = (): void => reject(new Error('connection closed before CONNACK'));
      const onConnect = (): void => resolve();
      cleanup = () => {
        opts.signal?.removeEventListener('abort', onAbort);
        client.off('connect', onConnect);
        client.off('error', reject);
        client.off('close', onClose);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      client.once('connect', onConnect);
      client.once('error', reject);
      client.once('close', onClose);
    });
  } catch (e) {
    client.on('error', () => {});
    client.end(true);
    if (e instanceof EnrollmentError) throw e;
    if (isAuthRefusal(e)) {
      throw new EnrollmentError('token-rejected', `the broker rejected enrollment token "${token.tokenId}" (${errorMessage(e)}): it is unknown, revoked, expired or used up; ask the operator for a new one`);
    }
    return { kind: 'network', error: errorMessage(e) };
  } finally {
    cleanup();
  }

  client.on('error', (e) => log.warn('enrollment connection error', { error: errorMessage(e) }));
  try {
    return await converse(client, opts, password, log);
  } finally {
    await client.endAsync().catch(() => client.end(true));
  }
}

async function converse(client: MqttClient, opts: EnrollOptions, password: string, log: Logger): Promise<AttemptOutcome> {
  const resTopic = enrollResponseTopic(opts.deviceId);
  let answer: ((r: EnrollResponse) => void) | null = null;
  client.on('message', (topic, payload) => {
    if (topic !== resTopic) return;
    const parsed = parsePayload(EnrollResponseSchema, payload);
    if (!parsed.ok) return log.warn('enrollment: ignoring malformed answer', { reason: parsed.error });
    if (parsed.value.ok && parsed.value.deviceId !== opts.deviceId) {
      return log.warn('enrollment: ignoring answer for another device', { answeredFor: parsed.value.deviceId });
    }
    answer?.(parsed.value);
  });
  const closed = new Promise<'closed'>((resolve) => client.once('close', () => resolve('closed')));

  try {
    const granted = await client.subscribeAsync(resTopic, { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new EnrollmentError('token-rejected', `the broker refused the subscription to ${resTopic} for this enrollment token`);
  } catch (e) {
    if (e instanceof EnrollmentError) throw e;
    return { kind: 'network', error: `subscribe failed: ${errorMessage(e)}` };
  }

  const attempts = opts.requestAttempts ?? 3;
  const timeoutMs = opts.responseTimeoutMs ?? 10_000;
  for (let i = 0; i < attempts; i++) {
    // a fresh msgId per try, the same password: a control plane that saw an earlier try answers the same device and secret again
    const request = EnrollRequestSchema.parse({
      v: PROTOCOL_VERSION,
      msgId: newMsgId(),
      ts: Date.now(),
      deviceId: opts.deviceId,
      token: opts.enrollmentToken,
      password,
      agentVersion: opts.agentVersion,
    });
    const answered = new Promise<EnrollResponse>((resolve) => (answer = resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      await client.publishAsync(enrollRequestTopic(opts.deviceId), JSON.stringify(request), { qos: 1 });
    } catch (e) {
      clearTimeout(timer);
      return { kind: 'network', error: `publish failed: ${errorMessage(e)}` };
    }
    log.info('enrollment requested', { attempt: i + 1, msgId: request.msgId });
    const result = await Promise.race([answered, timeout, closed]);
    clearTimeout(timer);
    if (result === 'closed') return { kind: 'network', error: 'connection closed while waiting for the enrollment answer' };
    if (result !== 'timeout') return { kind: 'answer', response: result };
    log.warn('enrollment: no answer yet', { attempt: i + 1, timeoutMs });
  }
  return { kind: 'no-answer' };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
