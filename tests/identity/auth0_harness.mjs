// A faithful stand-in for Auth0's post-login Action runtime, for tests. No dependencies.
//
//   node tests/identity/auth0_harness.mjs <action.js> < input.json
//
// Input (one JSON object on stdin):
//   {"event": {...partial post-login event...}, "secrets": {...}, "timeLimitMs": 20000,
//    "now": "2026-01-05T10:00:00Z"}
// The partial event is deep-merged over a documented-shape default event (objects merge,
// arrays and scalars replace, and a `null` removes the default, e.g. {"transaction": null}
// for a login without a transaction). `organization` exists only if given.
//
// Output (one JSON line on stdout):
//   {"denied", "claims": {"id", "access"}, "appMetadataSets", "appMetadataAfter", "logs",
//    "threw", "timedOut", "durationMs", "notFaked"}
//
// As in Auth0:
// - the Action's file runs unchanged in its own context with only web-standard globals
//   (no `require`, no `process`), as a CommonJS script (`exports`, `module`);
// - `api.user.setAppMetadata` changes are applied after the run, not to
//   `event.user.app_metadata` during it, and not at all when the run throws or times out
//   (the login fails then); a `null` value removes the key; `api.access.deny` does not
//   cancel them;
// - the first `api.access.deny` wins;
// - the run is stopped after `timeLimitMs` (Auth0's limit is 20 s).
// `now` (optional, for servers on a test clock) sets the Action's clock: inside the run,
// `new Date()` and `Date.now()` start at that moment and advance with real time; the
// default event's timestamps use it too.
// Any api member that is not faked throws `not faked: api.x.y` when called and is listed
// in `notFaked`. Exit code 0 whenever the harness itself worked.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { format } from 'node:util';
import vm from 'node:vm';

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function deepMerge(base, patch) {
  const out = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isPlainObject(value) && isPlainObject(out[key])) out[key] = deepMerge(out[key], value);
    else out[key] = value;
  }
  return out;
}

function hex(n) {
  return crypto.randomUUID().replace(/-/g, '').slice(0, n);
}

// https://auth0.com/docs/customize/actions/explore-triggers/signup-and-login-triggers/login-trigger/post-login-event-object
function defaultEvent(now) {
  return {
    authentication: { methods: [{ name: 'pwd', timestamp: now }] },
    authorization: { roles: [] },
    client: { client_id: 'test-client-id', name: 'Test Application', metadata: {} },
    connection: {
      id: 'con_test0000000000',
      name: 'Username-Password-Authentication',
      strategy: 'auth0',
      metadata: {},
    },
    request: {
      ip: '203.0.113.7',
      hostname: 'test-tenant.us.auth0.com',
      method: 'GET',
      language: 'en-US',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
      query: {},
      body: {},
      geoip: {
        cityName: 'Paris',
        continentCode: 'EU',
        countryCode: 'FR',
        countryCode3: 'FRA',
        countryName: 'France',
        latitude: 48.8566,
        longitude: 2.3522,
        subdivisionCode: 'IDF',
        subdivisionName: 'Ile-de-France',
        timeZone: 'Europe/Paris',
      },
    },
    // A new transaction and session for every run, as for a real login.
    session: { id: `sess_${hex(24)}` },
    stats: { logins_count: 1 },
    tenant: { id: 'test-tenant' },
    transaction: {
      id: `tx_${hex(24)}`,
      acr_values: [],
      locale: 'en',
      metadata: {},
      prompt: [],
      protocol: 'oidc-basic-profile',
      redirect_uri: 'https://app.example.com/callback',
      requested_scopes: ['openid', 'profile', 'email'],
      response_mode: 'query',
      response_type: ['code'],
      state: hex(16),
      ui_locales: [],
    },
    user: {
      user_id: 'auth0|test-user',
      email: 'test.user@example.com',
      email_verified: true,
      name: 'Test User',
      nickname: 'test.user',
      given_name: 'Test',
      family_name: 'User',
      picture: 'https://example.com/avatar.png',
      username: 'test.user',
      created_at: now,
      updated_at: now,
      identities: [
        { connection: 'Username-Password-Authentication', provider: 'auth0', user_id: 'test-user', isSocial: false },
      ],
      multifactor: [],
      enrolledFactors: [],
      app_metadata: {},
      user_metadata: {},
    },
    secrets: {},
  };
}

// The api: the faked members record what the Action asks for; any other member throws.
function makeApi(record) {
  const notFaked = (path) =>
    new Proxy(function notFakedMember() {}, {
      apply() {
        record.notFaked.push(path);
        throw new Error(`not faked: ${path}`);
      },
      get(_target, prop) {
        if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined;
        return notFaked(`${path}.${prop}`);
      },
    });

  let api;
  const faked = {
    access: {
      deny(reason) {
        if (record.denied === null) record.denied = reason === undefined ? '' : reason;
        return api;
      },
    },
    idToken: {
      setCustomClaim(name, value) {
        record.claims.id[name] = value;
        return api;
      },
    },
    accessToken: {
      setCustomClaim(name, value) {
        record.claims.access[name] = value;
        return api;
      },
    },
    user: {
      setAppMetadata(name, value) {
        record.appMetadataSets.push([name, value === undefined ? null : JSON.parse(JSON.stringify(value ?? null))]);
        return api;
      },
    },
  };
  const namespace = (name) =>
    new Proxy(faked[name], {
      get(target, prop) {
        if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined;
        return Object.hasOwn(target, prop) ? target[prop] : notFaked(`api.${name}.${prop}`);
      },
    });
  const namespaces = Object.fromEntries(Object.keys(faked).map((name) => [name, namespace(name)]));
  api = new Proxy(
    {},
    {
      get(_target, prop) {
        if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined;
        return Object.hasOwn(namespaces, prop) ? namespaces[prop] : notFaked(`api.${prop}`);
      },
    },
  );
  return api;
}

function errorText(err) {
  if (err && typeof err === 'object' && 'message' in err) return `${err.name || 'Error'}: ${err.message}`;
  return String(err);
}

// A Date whose current time starts at `startMs`; everything else is Date's own.
function clockDate(startMs) {
  const offset = startMs - Date.now();
  return class ClockDate extends Date {
    constructor(...args) {
      if (args.length === 0) super(Date.now() + offset);
      else super(...args);
    }

    static now() {
      return Date.now() + offset;
    }
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function main() {
  const actionPath = process.argv[2];
  if (!actionPath) throw new Error('usage: node auth0_harness.mjs <action.js> < input.json');
  const code = readFileSync(actionPath, 'utf8');
  const raw = (await readStdin()).trim();
  const input = raw ? JSON.parse(raw) : {};
  if (!isPlainObject(input)) throw new Error('stdin must hold one JSON object');

  let SandboxDate = Date;
  if (input.now != null) {
    const startMs = Date.parse(input.now);
    if (Number.isNaN(startMs)) throw new Error(`"now" is not a date: ${input.now}`);
    SandboxDate = clockDate(startMs);
  }
  const partial = isPlainObject(input.event) ? input.event : {};
  const event = deepMerge(defaultEvent(new SandboxDate().toISOString()), partial);
  const secrets = { ...(isPlainObject(partial.secrets) ? partial.secrets : {}), ...(isPlainObject(input.secrets) ? input.secrets : {}) };
  // Auth0 secrets are always strings.
  event.secrets = Object.fromEntries(
    Object.entries(secrets).filter(([, v]) => v != null).map(([k, v]) => [k, String(v)]),
  );
  if (!isPlainObject(event.user)) event.user = {};
  if (!isPlainObject(event.user.app_metadata)) event.user.app_metadata = {};
  const appMetadataBefore = JSON.parse(JSON.stringify(event.user.app_metadata));
  const timeLimitMs = Number.isFinite(input.timeLimitMs) && input.timeLimitMs > 0 ? input.timeLimitMs : 20000;

  const record = {
    denied: null,
    claims: { id: {}, access: {} },
    appMetadataSets: [],
    logs: [],
    notFaked: [],
  };
  const capture = (...args) => record.logs.push(format(...args));
  const sandboxConsole = { log: capture, info: capture, warn: capture, error: capture, debug: capture, trace: capture };

  const moduleObject = { exports: {} };
  const context = vm.createContext({
    exports: moduleObject.exports,
    module: moduleObject,
    console: sandboxConsole,
    fetch,
    AbortSignal,
    AbortController,
    URL,
    URLSearchParams,
    crypto: globalThis.crypto,
    setTimeout,
    clearTimeout,
    Date: SandboxDate,
    JSON,
    Promise,
    TextEncoder,
    TextDecoder,
    structuredClone,
  });

  let threw = null;
  let timedOut = false;
  let durationMs = 0;
  let timer;
  const started = performance.now();
  try {
    new vm.Script(code, { filename: actionPath }).runInContext(context);
    const handler = moduleObject.exports?.onExecutePostLogin;
    if (typeof handler !== 'function') throw new Error('the Action exports no onExecutePostLogin function');
    // The Action gets its own copy, so what it does to `event` changes nothing recorded here.
    const run = Promise.resolve().then(() => handler(structuredClone(event), makeApi(record)));
    const limit = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeLimitMs);
    });
    const outcome = await Promise.race([run.then(() => 'done'), limit]);
    if (outcome === 'timeout') timedOut = true;
  } catch (err) {
    threw = errorText(err);
  } finally {
    clearTimeout(timer);
    durationMs = Math.round(performance.now() - started);
  }

  const appMetadataAfter = appMetadataBefore;
  if (!threw && !timedOut) {
    for (const [name, value] of record.appMetadataSets) {
      if (value === null) delete appMetadataAfter[name];
      else appMetadataAfter[name] = value;
    }
  }

  const line = JSON.stringify({
    denied: record.denied,
    claims: record.claims,
    appMetadataSets: record.appMetadataSets,
    appMetadataAfter,
    logs: record.logs,
    threw,
    timedOut,
    durationMs,
    notFaked: record.notFaked,
  });
  // Exit at once: a timed-out Action may still hold sockets or timers open.
  process.stdout.write(line + '\n', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`auth0 harness failed: ${err?.stack || err}\n`);
  process.exit(2);
});
