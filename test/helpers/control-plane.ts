import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '../../control-plane/log.ts';
import { startControlPlane, type ControlPlane, type ControlPlaneExtension, type ControlPlaneOptions } from '../../control-plane/server.ts';
import { startMosquitto, type Mosquitto } from './mosquitto.ts';

export type BrokerKind = 'embedded' | 'mosquitto';
export const BROKER_KINDS: BrokerKind[] = ['embedded', 'mosquitto'];

export type TestFleet = {
  cp: ControlPlane;
  mosquitto: Mosquitto | null;
  token: string;
  dataDir: string;
  api: (path: string, init?: RequestInit & { json?: unknown; auth?: string | null }) => Promise<{ status: number; body: any; text: string }>;
  /** Stops the control plane and starts it again on the same data; `whileDown` runs in between. */
  restartControlPlane: (whileDown?: () => Promise<void>) => Promise<void>;
  stop: () => Promise<void>;
};

const OPERATOR_TOKEN = 'test-operator-token-0123456789';

/**
 * A control plane on free ports over the chosen broker, with a fresh data folder. `rooms` builds
 * extensions that need the data folder (see control-plane/compose.ts); they survive restarts.
 */
export async function startTestFleet(
  kind: BrokerKind,
  extra: Partial<ControlPlaneOptions> = {},
  rooms?: (dataDir: string) => ControlPlaneExtension[],
  brokerOpts: { grantTimeoutMs?: number } = {},
): Promise<TestFleet> {
  const dataDir = mkdtempSync(join(tmpdir(), `ef-cp-${kind}-`));
  const roomExtensions = rooms ? rooms(dataDir) : [];
  const mosquitto = kind === 'mosquitto' ? await startMosquitto() : null;
  const log = process.env.EDGEFLEET_TEST_LOGS ? createLogger({ level: 'debug' }) : silentLogger;
  let brokerPort = 0;
  const options = (): ControlPlaneOptions => ({
    dataDir,
    httpHost: '127.0.0.1',
    httpPort: 0,
    broker: mosquitto ? { kind: 'mosquitto', url: mosquitto.url, username: mosquitto.username, password: mosquitto.password, ...brokerOpts } : { kind: 'embedded', host: '127.0.0.1', port: brokerPort },
    operatorToken: OPERATOR_TOKEN,
    presenceTimeoutMs: 60_000,
    log,
    ...extra,
    extensions: [...roomExtensions, ...(extra.extensions ?? [])],
  });
  let cp: ControlPlane;
  try {
    cp = await startControlPlane(options());
  } catch (e) {
    await mosquitto?.stop();
    throw e;
  }
  const fleet: TestFleet = {
    cp,
    mosquitto,
    token: OPERATOR_TOKEN,
    dataDir,
    api: async (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (init.auth !== null) headers.set('authorization', `Bearer ${init.auth ?? OPERATOR_TOKEN}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      const res = await fetch(fleet.cp.httpUrl + path, { ...init, headers, body: body ?? null });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
      return { status: res.status, body: parsed, text };
    },
    restartControlPlane: async (whileDown) => {
      // the embedded broker keeps its port across the restart so agents reconnect to it
      brokerPort = Number(new URL(fleet.cp.brokerUrl).port);
      await fleet.cp.stop();
      await whileDown?.();
      fleet.cp = await startControlPlane(options());
    },
    stop: async () => {
      await fleet.cp.stop();
      await mosquitto?.stop();
    },
  };
  return fleet;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Waits until exactly n devices are online and every one of them has its profile. A device's `online` and its
 * birth (which gives the profile) are written in arrival order, possibly a presence tick apart: a test that
 * targets devices by profile right after they came online waits for this, not for `online` alone.
 */
export async function waitForOnlineWithProfiles(fleet: TestFleet, n: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(`${n} devices online with their profiles`, async () => {
    const items = (await fleet.api(`/devices?status=online&limit=${Math.max(n, 1) + 1}`)).body.items as { profileId: string | null }[];
    return items.length === n && items.every((d) => d.profileId !== null);
  }, timeoutMs);
}
