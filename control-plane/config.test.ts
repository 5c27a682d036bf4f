import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from './config.ts';

test('--max-connections reaches the embedded broker; flags win over env; bad values are named', () => {
  const flag = parseConfig(['--max-connections', '100'], { EDGEFLEET_MAX_CONNECTIONS: '50' });
  assert.ok(flag.ok);
  assert.deepEqual(flag.value.options.broker, { kind: 'embedded', host: '127.0.0.1', port: 1883, maxConnections: 100 });
  const env = parseConfig([], { EDGEFLEET_MAX_CONNECTIONS: '50' });
  assert.ok(env.ok && env.value.options.broker.kind === 'embedded' && env.value.options.broker.maxConnections === 50);
  const unset = parseConfig([], {});
  assert.ok(unset.ok && unset.value.options.broker.kind === 'embedded' && !('maxConnections' in unset.value.options.broker));
  for (const bad of ['1', '-5', 'lots', '2.5']) {
    const r = parseConfig([`--max-connections=${bad}`], {});
    assert.ok(!r.ok, bad);
    assert.match(r.error, /EDGEFLEET_MAX_CONNECTIONS/, bad);
  }
});
