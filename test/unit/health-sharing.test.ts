/** Server health told between worker threads (workers/shared.ts): ejections and their end reach every copy of a server. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ServerState, type StateOwner } from '../../src/upstream/server-state.ts';
import { allocateSharedMemory, sharedHealth } from '../../src/workers/shared.ts';
import { waitFor } from '../helpers/http.ts';

const OWNER: StateOwner = {
  policy: {
    health: null,
    outlier: { consecutiveFailures: 2, consecutive5xx: 0, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 100, recoveryProbeMs: 0 },
    slowStartMs: 0,
  },
  drain: false,
  changed() {},
  mayEject: () => true,
};

/** One server's state in two workers sharing health (the first runs the checks), closed after the test. */
function twoWorkers(t: TestContext, url: URL): { here: ServerState; there: ServerState } {
  const memory = allocateSharedMemory(100, 2);
  const first = sharedHealth(memory, true);
  const second = sharedHealth(memory, false);
  const here = new ServerState('app', url, null, first);
  const there = new ServerState('app', url, null, second);
  t.after(() => {
    here.close();
    there.close();
    first.close();
    second.close();
  });
  return { here, there };
}

test('an ejection by one worker ejects the server in the others; its end lets it back everywhere', async (t) => {
  const { here, there } = twoWorkers(t, new URL('http://127.0.0.1:9'));
  here.attach(OWNER);
  there.attach(OWNER);
  here.onFailure('UPSTREAM_CONNECT');
  here.onFailure('UPSTREAM_CONNECT');
  assert.equal(here.status, 'ejected');
  await waitFor(() => there.status === 'ejected', 1000, 'the other worker to eject it too');
  assert.equal(there.ejections, 1);
  assert.ok(there.ejectedUntil > 0);
  assert.equal(there.available, false);
  // A copy that learnt of an ejection does not tell it back.
  here.applyRemote({ key: 'app|http://127.0.0.1:9', kind: 'uneject', onTrial: true, reason: 'recovery probe passed' });
  assert.equal(here.status, 'up');
  assert.equal(there.status, 'ejected', 'applied without being told again');
});

test('a checker that starts afresh (a replaced first worker) does not bring back a server the others know is down', async (t) => {
  const memory = allocateSharedMemory(100, 2);
  const first = sharedHealth(memory, true);
  const second = sharedHealth(memory, false);
  const url = new URL('http://127.0.0.1:9');
  let checks = 0;
  const health = {
    probe: { check: async () => (checks++, { ok: false, detail: 'refused' }) },
    intervalMs: 20,
    jitter: 0,
    timeoutMs: 100,
    rise: 2,
    fall: 3,
    key: 'h',
  };
  const owner: StateOwner = { ...OWNER, policy: { ...OWNER.policy, health } };
  const there = new ServerState('app', url, null, second);
  there.attach(owner);
  there.applyRemote({ key: 'app|http://127.0.0.1:9', kind: 'check', result: { ok: false, detail: 'refused', ms: 1, at: Date.now() }, healthy: false });
  assert.equal(there.status, 'down');
  const here = new ServerState('app', url, null, first);
  t.after(() => {
    here.close();
    there.close();
    first.close();
    second.close();
  });
  here.attach(owner);
  await waitFor(() => checks >= 1, 2000, 'a first check');
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(there.status, 'down', 'one failure is no verdict: the other worker keeps what it knew');
  await waitFor(() => here.status === 'down', 2000, 'the new checker to find it down');
  assert.equal(there.status, 'down');
});

test('an ejection ended early (the recovery probe passed) lets the server back in every worker', async (t) => {
  const listening = createServer((socket) => socket.end());
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  t.after(() => listening.close());
  const { here, there } = twoWorkers(t, new URL(`http://127.0.0.1:${(listening.address() as AddressInfo).port}`));
  // Ejected for 30 s, probed after 20 ms: the server accepts connections, so the probe passes.
  const probing: StateOwner = { ...OWNER, policy: { ...OWNER.policy, outlier: { ...(OWNER.policy.outlier as NonNullable<StateOwner['policy']['outlier']>), recoveryProbeMs: 20 } } };
  here.attach(probing);
  there.attach(probing);
  here.onFailure('UPSTREAM_CONNECT');
  here.onFailure('UPSTREAM_CONNECT');
  await waitFor(() => there.status === 'ejected', 1000, 'the other worker to eject it too');
  await waitFor(() => here.status === 'up', 2000, 'the recovery probe to pass');
  await waitFor(() => there.status === 'up', 1000, 'the other worker to let it back');
  assert.equal(there.onTrial, true, 'back on trial, as where the probe passed');
});
