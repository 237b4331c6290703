// How fast does Stigg's own Node SDK answer checks against Tollgate with its cache kept live
// by Tollgate's socket, and how soon does it see a plan change?
//
//     make setup && node bench/node_sdk.mjs [--checks 200000] [--changes 40]
//
// It serves Tollgate itself (`.venv/bin/tollgate serve --demo`, a fresh SQLite file in a
// temporary folder, jobs off), provisions a customer on plan-free through the REST API, and
// starts `@stigg/node-server-sdk` (tests/js/node_modules) with `realtimeUpdatesEnabled`.
//
// 1. Checks per second: `getMeteredEntitlement` of the customer, awaited one after another,
//    after one warm-up check has filled the cache; next to the same number of lookups in a
//    plain `Map` (the floor any cache can reach) in the same run: ratio = sdk / baseline.
// 2. Staleness: `--changes` times, a customer on plan-free (3 seats) whose answer the SDK has
//    cached is upgraded to plan-pro (20 seats) with `POST /api/v1/subscriptions`; the time
//    from sending that request to the first check whose answer shows the new limit (checks
//    run back to back meanwhile). A new customer each time: a downgrade back would wait for
//    the end of the billing period. Goal: p99 <= 200 ms.
//
// The last line is JSON: {"checks_per_s", "baseline_per_s", "ratio", "staleness_ms": {"p50", "p99"}}.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const require = createRequire(join(root, 'tests/js/package.json'));
const sdk = require('@stigg/node-server-sdk');
const Stigg = sdk.Stigg ?? sdk.default ?? sdk;

const { values } = parseArgs({
  options: {
    checks: { type: 'string', default: '200000' },
    changes: { type: 'string', default: '40' },
  },
});
const CHECKS = Number(values.checks);
const CHANGES = Number(values.changes);
const CUSTOMER = 'bench-customer';
const FEATURE = 'feature-seats';
const LIMITS = { 'plan-free': 3, 'plan-pro': 20 };

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function serveTollgate() {
  const folder = mkdtempSync(join(tmpdir(), 'tollgate-node-bench-'));
  const port = await freePort();
  const child = spawn(
    join(root, '.venv/bin/tollgate'),
    ['serve', '--demo', '--port', String(port)],
    {
      env: {
        ...process.env,
        TOLLGATE_DATABASE_URL: `sqlite:///${join(folder, 'bench.db')}`,
        TOLLGATE_RUN_JOBS: 'false',
        TOLLGATE_LOG_LEVEL: 'warning',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const baseUri = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const key = /server key: (\S+)/.exec(output)?.[1];
    try {
      if (key && (await fetch(`${baseUri}/healthz`)).ok) {
        return { baseUri, key, stop: () => { child.kill('SIGTERM'); rmSync(folder, { recursive: true, force: true }); } };
      }
    } catch { /* not listening yet */ }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tollgate did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function rest(server, path, body) {
  const answer = await fetch(`${server.baseUri}${path}`, {
    method: 'POST',
    headers: { 'X-API-KEY': server.key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${await answer.text()}`);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const server = await serveTollgate();
try {
  await rest(server, '/api/v1/customers', { id: CUSTOMER });
  await rest(server, '/api/v1/subscriptions', { customerId: CUSTOMER, planId: 'plan-free' });
  const stigg = Stigg.initialize({
    apiKey: server.key,
    baseUri: server.baseUri,
    baseEdgeUri: server.baseUri,
    realtimeUpdatesEnabled: true,
  });
  await stigg.waitForInitialization();
  const check = () => stigg.getMeteredEntitlement({ customerId: CUSTOMER, featureId: FEATURE });
  const first = await check();
  if (first.usageLimit !== LIMITS['plan-free']) throw new Error(`unexpected answer ${JSON.stringify(first)}`);
  await new Promise((r) => setTimeout(r, 500)); // the socket's subscriptions settle

  let started = performance.now();
  for (let i = 0; i < CHECKS; i += 1) await check();
  const checksPerS = CHECKS / ((performance.now() - started) / 1000);

  const map = new Map([[`${CUSTOMER}:${FEATURE}`, first]]);
  let found = 0;
  started = performance.now();
  for (let i = 0; i < CHECKS; i += 1) if (map.get(`${CUSTOMER}:${FEATURE}`)) found += 1;
  const baselinePerS = CHECKS / ((performance.now() - started) / 1000);
  if (found !== CHECKS) throw new Error('baseline lost its entry');

  const delays = [];
  const requests = []; // how long the plan change's own request took, for comparison
  for (let i = 0; i < CHANGES; i += 1) {
    const customerId = `bench-upgraded-${i}`;
    await rest(server, '/api/v1/customers', { id: customerId });
    await rest(server, '/api/v1/subscriptions', { customerId, planId: 'plan-free' });
    const seats = () => stigg.getMeteredEntitlement({ customerId, featureId: FEATURE });
    while ((await seats()).usageLimit !== LIMITS['plan-free']) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50)); // the provisioning's own pushes are through
    const sent = performance.now();
    const changed = rest(server, '/api/v1/subscriptions', { customerId, planId: 'plan-pro' })
      .then(() => requests.push(performance.now() - sent));
    for (;;) {
      if ((await seats()).usageLimit === LIMITS['plan-pro']) break;
      if (performance.now() - sent > 10_000) throw new Error(`${customerId}: no new answer after 10 s`);
      await new Promise((r) => setImmediate(r));
    }
    delays.push(performance.now() - sent);
    await changed;
  }
  delays.sort((a, b) => a - b);
  requests.sort((a, b) => a - b);
  const staleness = { p50: +percentile(delays, 50).toFixed(1), p99: +percentile(delays, 99).toFixed(1) };
  console.log(`checks through the Node SDK: ${Math.round(checksPerS).toLocaleString()}/s`);
  console.log(`plain Map lookups:           ${Math.round(baselinePerS).toLocaleString()}/s`);
  console.log(`plan change to new answer:   p50 ${staleness.p50} ms, p99 ${staleness.p99} ms (goal p99 <= 200 ms)`);
  console.log(`the change's own request:    p50 ${percentile(requests, 50).toFixed(1)} ms, p99 ${percentile(requests, 99).toFixed(1)} ms`);
  console.log(JSON.stringify({
    checks_per_s: Math.round(checksPerS),
    baseline_per_s: Math.round(baselinePerS),
    ratio: +(checksPerS / baselinePerS).toFixed(4),
    staleness_ms: staleness,
  }));
} finally {
  server.stop();
}
process.exit(0); // the SDK's socket would keep the process alive
