import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { coalesceClientWrites, coalesceWrites, writesCoalesced } from '../shared/coalesce-writes.ts';
import { deviceTopic } from '../shared/topics.ts';
import { BROKER_KINDS, startTestFleet, waitFor, type TestFleet } from './helpers/control-plane.ts';
import { birthPayload, connectRaw, enrollRaw, heartbeatPayload } from './helpers/raw-device.ts';

// mqtt-packet corks a stream per packet and uncorks it on the next tick; mqtt.js handles one incoming packet per
// tick, so each PUBACK the control plane sent left in its own writev (14.5 % of its busy time at 5,000 devices).

const servers: Server[] = [];
const fleets: TestFleet[] = [];
after(async () => {
  for (const f of fleets) await f.stop();
  for (const s of servers) s.close();
});

/** A connected TCP socket whose writes to the kernel (Node's _write / _writev calls) are counted. */
async function countedSocket(): Promise<{ socket: Socket; kernelWrites: () => number; received: Promise<Buffer>; expect: (bytes: number) => void }> {
  let expected = Infinity;
  let resolveReceived: (b: Buffer) => void = () => {};
  const received = new Promise<Buffer>((r) => (resolveReceived = r));
  const server = createServer((peer) => {
    const parts: Buffer[] = [];
    let n = 0;
    peer.on('data', (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= expected) resolveReceived(Buffer.concat(parts));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let writes = 0;
  const s = socket as unknown as { _write: (...a: unknown[]) => unknown; _writev: (...a: unknown[]) => unknown };
  const w = s._write.bind(socket);
  const wv = s._writev.bind(socket);
  s._write = (...a) => (writes++, w(...a));
  s._writev = (...a) => (writes++, wv(...a));
  return { socket, kernelWrites: () => writes, received, expect: (b) => (expected = b) };
}

/** What mqtt-packet's writeToStream does with every packet (under mqtt.js and aedes): cork, write, uncork next tick. */
function writePacket(stream: Socket, packet: Buffer): boolean {
  stream.cork();
  process.nextTick(() => stream.uncork());
  return stream.write(packet);
}

/** n PUBACKs written the way mqtt.js writes them: one per tick, all in one turn of the event loop. */
async function pubacksOnePerTick(socket: Socket, n: number): Promise<number> {
  let bytes = 0;
  for (let i = 1; i <= n; i++) {
    await new Promise<void>((r) => process.nextTick(r));
    writePacket(socket, Buffer.from([0x40, 2, i >> 8, i & 0xff]));
    bytes += 4;
  }
  return bytes;
}

test('without coalescing, packets written one per tick leave in one kernel write each (the cost this removes)', async () => {
  const { socket, kernelWrites, received, expect } = await countedSocket();
  const bytes = await pubacksOnePerTick(socket, 50);
  expect(bytes);
  assert.equal((await received).length, bytes);
  assert.equal(kernelWrites(), 50);
  socket.destroy();
});

test('coalesceWrites: the packets of one turn leave in one kernel write, in order and byte for byte', async () => {
  const { socket, kernelWrites, received, expect } = await countedSocket();
  coalesceWrites(socket);
  coalesceWrites(socket); // a second call changes nothing
  assert.ok(writesCoalesced(socket));
  const bytes = await pubacksOnePerTick(socket, 50);
  expect(bytes);
  const got = await received;
  assert.equal(got.length, bytes);
  for (let i = 1; i <= 50; i++) assert.deepEqual([...got.subarray((i - 1) * 4, i * 4)], [0x40, 2, i >> 8, i & 0xff], `PUBACK ${i} in place`);
  assert.equal(kernelWrites(), 1);
  // the next turn is a write of its own: nothing waits for more than one turn
  const more = await pubacksOnePerTick(socket, 3);
  await new Promise<void>((r) => setImmediate(r));
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(kernelWrites(), 2);
  assert.equal(more, 12);
  socket.destroy();
});

test('coalesceWrites keeps backpressure: write() answers false past the high-water mark and drain follows the flush', async () => {
  const { socket, received, expect } = await countedSocket();
  coalesceWrites(socket);
  const big = Buffer.alloc(socket.writableHighWaterMark * 4, 7);
  const ok = writePacket(socket, big);
  assert.equal(ok, false);
  await new Promise<void>((r) => socket.once('drain', () => r()));
  expect(big.length);
  assert.ok((await received).length >= big.length);
  socket.destroy();
});

test('coalesceClientWrites: the client socket now and the socket of every reconnect; streams without cork are left alone', () => {
  const stream = (): { cork(): void; uncork(): void } => ({ cork() {}, uncork() {} });
  const first = stream();
  const client = Object.assign(new EventEmitter(), { stream: first as unknown });
  assert.equal(coalesceClientWrites(client), client);
  assert.ok(writesCoalesced(first));
  const second = stream();
  client.stream = second;
  client.emit('connect');
  assert.ok(writesCoalesced(second));
  client.stream = {};
  client.emit('connect');
  assert.equal(writesCoalesced(client.stream as object), false);
});

for (const kind of BROKER_KINDS) {
  test(`${kind}: the control plane's own connection coalesces its writes (and the embedded broker's side of it); heartbeats all handled`, async () => {
    const fleet = await startTestFleet(kind);
    fleets.push(fleet);
    const session = fleet.cp.ctx.fleet as unknown as { client: { stream: object } | null };
    assert.ok(session.client && writesCoalesced(session.client.stream), 'the fleet session socket');
    if (kind === 'embedded') {
      const broker = fleet.cp.ctx.broker as unknown as { aedes: { clients: Record<string, { conn: object }> } };
      const cpConn = Object.entries(broker.aedes.clients).find(([id]) => id.startsWith('edgefleet-cp-'))?.[1].conn;
      assert.ok(cpConn && writesCoalesced(cpConn), "the broker's side of the control plane's connection");
    }
    // 20 devices x 10 heartbeats in one burst: every one handled (their PUBACKs leave together)
    const token = (await fleet.api('/enrollment-tokens', { method: 'POST', json: { maxUses: 20 } })).body.token;
    const devices = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const id = `coalesce-${kind}-${i}`;
        const { password } = await enrollRaw(fleet.cp.brokerUrl, token, id);
        const c = await connectRaw(fleet.cp.brokerUrl, { clientId: id, username: id, password });
        await c.publishAsync(deviceTopic(id, 'birth'), birthPayload(id), { qos: 1 });
        return { id, c };
      }),
    );
    const accepted = async (): Promise<number> => Number(/^edgefleet_mqtt_messages_accepted_total\{channel="heartbeat"\} (\d+)/m.exec((await fleet.api('/metrics')).text)?.[1] ?? 0);
    const before = await accepted();
    await Promise.all(
      devices.flatMap(({ id, c }) =>
        Array.from({ length: 10 }, (_, k) =>
          c.publishAsync(deviceTopic(id, 'heartbeat'), heartbeatPayload({ msgId: `${id}-hb-${k}`, uptimeSeconds: k }), { qos: 1 }),
        ),
      ),
    );
    await waitFor('200 heartbeats accepted', async () => (await accepted()) - before === 200);
    await Promise.all(devices.map(({ c }) => c.endAsync()));
  });
}
