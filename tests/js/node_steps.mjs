// Runs @stigg/node-server-sdk against a live Tollgate through a list of steps and prints
// each step's answer as JSON, for tests/js/test_node_sdk.py.
//   node node_steps.mjs '<json: {baseUri, apiKey, realtime, steps: [{call, args}]}>'
// Edge requests go through a counting proxy, so that a test can tell a check answered from
// the SDK's cache from one that needed a request. Besides the SDK's own methods, steps may be
//   {call: "rest", args: [method, path, body]}     a request to Tollgate's REST API
//   {call: "until", args: [method, params, path, value, ms]}  repeat a check until the
//       answer's `path` equals `value` (at most `ms`), answering {answer, ms, edgeGets}
//   {call: "edgeGets"}                             edge requests for customers so far
//   {call: "edgePaths"}                            every edge request's path so far
//   {call: "initialized"}                          how waitForInitialization ended ("ok" or
//       its error's message; steps run either way)
import { createServer, request } from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sdk = require('@stigg/node-server-sdk');
const Stigg = sdk.Stigg ?? sdk.default ?? sdk;
const plan = JSON.parse(process.argv[2]);
const target = new URL(plan.baseUri);

let customerGets = 0;
const edgePaths = [];
const proxy = createServer((incoming, outgoing) => {
  edgePaths.push(incoming.url.split('?')[0]);
  if (incoming.url.startsWith('/v1/c/')) customerGets += 1;
  const forwarded = request(
    { host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers: incoming.headers },
    (answer) => {
      outgoing.writeHead(answer.statusCode, answer.headers);
      answer.pipe(outgoing);
    },
  );
  incoming.pipe(forwarded);
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const edge = `http://127.0.0.1:${proxy.address().port}`;

const stigg = Stigg.initialize({
  apiKey: plan.apiKey,
  baseUri: plan.baseUri,
  baseEdgeUri: edge,
  realtimeUpdatesEnabled: plan.realtime ?? false,
});

function pick(value, path) {
  return path.split('.').reduce((found, key) => (found == null ? found : found[key]), value);
}

async function rest(method, path, body) {
  const answer = await fetch(`${plan.baseUri}${path}`, {
    method,
    headers: { 'X-API-KEY': plan.apiKey, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, body: await answer.json() };
}

const results = [];
let initialized = 'ok';
try {
  await stigg.waitForInitialization();
} catch (error) {
  initialized = String(error?.message ?? error);
}
for (const step of plan.steps) {
  const args = step.args ?? [];
  try {
    if (step.call === 'rest') results.push({ ok: await rest(...args) });
    else if (step.call === 'edgeGets') results.push({ ok: customerGets });
    else if (step.call === 'edgePaths') results.push({ ok: [...edgePaths] });
    else if (step.call === 'initialized') results.push({ ok: initialized });
    else if (step.call === 'sleep') results.push({ ok: await new Promise((r) => setTimeout(r, args[0])) });
    else if (step.call === 'until') {
      const [method, params, path, value, ms] = args;
      const started = Date.now();
      let answer = await stigg[method](params);
      while (pick(answer, path) !== value && Date.now() - started < ms) {
        await new Promise((r) => setTimeout(r, 10));
        answer = await stigg[method](params);
      }
      results.push({ ok: { answer, ms: Date.now() - started, edgeGets: customerGets } });
    } else results.push({ ok: await stigg[step.call](...args) });
  } catch (error) {
    results.push({ error: String(error?.message ?? error), code: error?.errorCode ?? null });
  }
}
console.log(JSON.stringify(results));
process.exit(0);
