import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BROKER_KINDS } from '../helpers/control-plane.ts';
import { runFuzz } from '../helpers/fuzz.ts';

/**
 * Property-based fuzzing with fast-check over every HTTP body and MQTT payload (issue 8): per broker, 1,500 HTTP
 * requests over every documented route (arbitrary and near-valid bodies, hostile ids and queries, good/missing/wrong
 * token) and 1,500 MQTT payloads on every device channel from a real device login. Fixed seeds, so a failure replays;
 * bench/fuzz-bench.ts runs 100,000. Stated bound: RSS grows by less than 400 MiB over the run (the test process holds
 * the control plane, the embedded broker and the fuzzer).
 */
const CASES = Number(process.env.EDGEFLEET_FUZZ_CASES ?? 1500);
const RSS_BOUND_MIB = 400;

for (const kind of BROKER_KINDS) {
  test(`fuzzing every schema through a real control plane on the ${kind} broker`, { timeout: 600_000 }, async () => {
    const r = await runFuzz({ kind, httpCases: CASES, mqttCases: CASES, seed: 8_2026 });
    assert.deepEqual(r.fiveHundreds.slice(0, 5), [], `5xx answers: ${r.fiveHundreds.length}`);
    assert.deepEqual(r.unhandled, []);
    assert.equal(r.healthyAfter, true, 'control plane healthy after the fuzz');
    assert.equal(r.victimChanged, null, 'no stored row of another device changed');
    assert.ok(r.mqttCounted >= r.mqttSent, `every MQTT message counted (${r.mqttCounted} of ${r.mqttSent})`);
    assert.ok(r.rssPeakMiB - r.rssStartMiB < RSS_BOUND_MIB, `RSS ${r.rssStartMiB} -> peak ${r.rssPeakMiB} MiB`);
    // the fuzz reached the routes' own validation, not only the auth check
    assert.ok((r.httpByStatus['400'] ?? 0) > CASES / 10, JSON.stringify(r.httpByStatus));
  });
}
