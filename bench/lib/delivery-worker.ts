/**
 * Devices for bench/delivery-bench.ts in a process of their own, as devices are on a fleet: either EdgeFleet agents
 * (of the checkout named in the command, so a before/after run compares agents too) or plain MQTT subscribers logged
 * in as devices, the raw baseline, which count messages and do nothing else. Driven by the bench over IPC.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MqttClient } from 'mqtt';
import type { AgentHandle } from '../../agent/index.ts';
import { deviceTopic } from '../../shared/topics.ts';
import type { DeviceFacts } from '../../shared/facts.ts';

export type WorkerCommand =
  | { op: 'agents'; root: string; brokerUrl: string; token: string; ids: string[]; stateRoot: string; facts: DeviceFacts; window: number; fanoutWindow?: number }
  | { op: 'raw'; root: string; brokerUrl: string; token: string; ids: string[] }
  /**
   * Raw subscribers: count from zero until every one has `n` messages (on its device topic, or on `shared` too). With
   * `persistDir` each also does what any device must do with a model's bytes, and nothing more: a sha256 of each
   * message, a write of it at its place in a file of its own (pwrite on the event loop), and an fsync after the last.
   */
  | { op: 'arm'; n: number; shared: string | null; persistDir: string | null }
  | { op: 'disarm'; shared: string | null }
  /** This process's CPU seconds so far (user + system), answered as `cpuS`. */
  | { op: 'cpu' }
  /** A CPU profile of this process from `profile-start` to `profile-stop`, written to `file`. */
  | { op: 'profile-start' }
  | { op: 'profile-stop'; file: string };

/** `ok` answers a command; `raw-done` carries the wall-clock time (ms, sub-ms precision) the last counted message arrived. */
export type WorkerReply = { ok: WorkerCommand['op']; cpuS?: number } | { error: string } | { rawDone: number };

const agents: AgentHandle[] = [];
const raws: { id: string; c: MqttClient; got: number; fd: number | null }[] = [];
let persistDir: string | null = null;
let armed: { n: number; left: number } | null = null;
let profiler: import('node:inspector/promises').Session | null = null;
const now = (): number => performance.timeOrigin + performance.now();
const reply = (r: WorkerReply): void => void process.send?.(r);

async function run(cmd: WorkerCommand): Promise<void> {
  const at = (p: string): string => pathToFileURL(join(cmd.op === 'agents' || cmd.op === 'raw' ? cmd.root : '.', p)).href;
  switch (cmd.op) {
    case 'agents': {
      const { startAgent } = (await import(at('agent/index.ts'))) as typeof import('../../agent/index.ts');
      for (let i = 0; i < cmd.ids.length; i += 25) {
        const started = await Promise.all(
          cmd.ids.slice(i, i + 25).map((deviceId) =>
            startAgent({
              brokerUrl: cmd.brokerUrl,
              stateDir: join(cmd.stateRoot, deviceId),
              enrollmentToken: cmd.token,
              deviceId,
              facts: cmd.facts,
              heartbeatIntervalMs: 60_000,
              delivery: { window: cmd.window, ...(cmd.fanoutWindow ? { fanoutWindow: cmd.fanoutWindow } : {}), trtexecPath: null, runBenchmarks: false },
            }),
          ),
        );
        agents.push(...started);
        await Promise.all(started.map((a) => a.waitFor('connected', 120_000)));
      }
      return reply({ ok: 'agents' });
    }
    case 'raw': {
      const { connectRaw, enrollRaw } = (await import(at('test/helpers/raw-device.ts'))) as typeof import('../../test/helpers/raw-device.ts');
      for (let i = 0; i < cmd.ids.length; i += 20) {
        const batch = await Promise.all(
          cmd.ids.slice(i, i + 20).map(async (id) => {
            const { password } = await enrollRaw(cmd.brokerUrl, cmd.token, id);
            const c = await connectRaw(cmd.brokerUrl, { clientId: id, username: id, password });
            await c.subscribeAsync(deviceTopic(id, 'xfer/data'), { qos: 1 });
            const r: (typeof raws)[number] = { id, c, got: 0, fd: null };
            c.on('message', (_topic, payload) => {
              if (!armed) return;
              if (r.fd !== null) {
                createHash('sha256').update(payload).digest();
                writeAll(r.fd, payload, r.got * payload.length);
              }
              if (++r.got !== armed.n) return;
              if (r.fd !== null) fsyncSync(r.fd);
              if (--armed.left === 0) reply({ rawDone: now() });
            });
            return r;
          }),
        );
        raws.push(...batch);
      }
      return reply({ ok: 'raw' });
    }
    case 'arm': {
      if (cmd.shared) await Promise.all(raws.map((r) => r.c.subscribeAsync(cmd.shared!, { qos: 1 })));
      persistDir = cmd.persistDir;
      for (const r of raws) {
        r.got = 0;
        r.fd = persistDir ? openSync(join(persistDir, `${r.id}.bin`), 'w', 0o600) : null;
      }
      armed = { n: cmd.n, left: raws.length };
      return reply({ ok: 'arm' });
    }
    case 'disarm': {
      armed = null;
      for (const r of raws) {
        if (r.fd !== null) closeSync(r.fd);
        r.fd = null;
        if (persistDir) rmSync(join(persistDir, `${r.id}.bin`), { force: true });
      }
      if (cmd.shared) await Promise.all(raws.map((r) => r.c.unsubscribeAsync(cmd.shared!)));
      return reply({ ok: 'disarm' });
    }
    case 'profile-start': {
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      return reply({ ok: 'profile-start' });
    }
    case 'profile-stop': {
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(cmd.file, JSON.stringify(profile));
        profiler.disconnect();
        profiler = null;
      }
      return reply({ ok: 'profile-stop' });
    }
    case 'cpu': {
      const u = process.cpuUsage();
      return reply({ ok: 'cpu', cpuS: (u.user + u.system) / 1e6 });
    }
  }
}

function writeAll(fd: number, buf: Uint8Array, at: number): void {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, at + done);
}

process.on('message', (m) => void run(m as WorkerCommand).catch((e: unknown) => reply({ error: String((e as Error)?.stack ?? e) })));
// the bench went away (or is done): the OS closes every socket, as when devices drop off
process.on('disconnect', () => process.exit(0));
