/**
 * Tollgate - Auth0 post-login Action.
 *
 * Reports every login to Tollgate (POST /api/v1/integrations/auth0/logins), which
 * provisions the user's and/or organization's customer on first sight, counts the login
 * against the active-users feature and answers ALLOW or DENY. A DENY (active-user limit
 * reached) blocks the login. When Tollgate cannot answer, the login goes ahead (fail open,
 * the default) and is kept in the user's app_metadata (`tollgate_pending_logins`) to be
 * replayed with the user's next login; or it is refused (fail closed).
 *
 * Self-contained: no npm dependencies, no `require`; only Node 20+ globals.
 *
 * Secrets (all strings):
 *   TOLLGATE_URL                required, base URL, e.g. https://tollgate.example.com
 *   TOLLGATE_API_KEY            required, a Tollgate server key (sent as X-API-KEY)
 *   TOLLGATE_MODE               B2C | B2B | BOTH (default B2C)
 *   TOLLGATE_USER_PLAN          plan of a new user customer (B2C, BOTH)
 *   TOLLGATE_ORGANIZATION_PLAN  plan of a new organization customer (B2B, BOTH)
 *   TOLLGATE_FEATURE            active-users feature id (default feature-mau)
 *   TOLLGATE_EVENT_NAME         login event name (default auth0-login)
 *   TOLLGATE_CLIENT_IDS         comma-separated client ids to act on (default: all)
 *   TOLLGATE_ENFORCE            true | false (default true): deny past the limit
 *   TOLLGATE_TIMEOUT_MS         request budget in ms (default 3000, 100..15000)
 *   TOLLGATE_FAIL_MODE          open | closed (default open)
 *   TOLLGATE_DENY_MESSAGE       deny template (default {message}); placeholders
 *                               {message} {customerId} {usage} {limit} {feature}
 *   TOLLGATE_CLAIM              custom claim set to the customer id on ALLOW (optional)
 */

const PENDING_KEY = 'tollgate_pending_logins';
const MAX_PENDING = 20;
const MAX_LOG = 256;
const UNAVAILABLE = 'Sign-in is unavailable right now; please try again shortly.';
const FALLBACK_DENY = 'Sign-in denied: the active-user limit of your plan is reached.';
const MODES = ['B2C', 'B2B', 'BOTH'];

exports.onExecutePostLogin = async (event, api) => {
  // Auth0 fails the whole login when an Action throws, so nothing may escape; and at most
  // one log line per run keeps the tenant's logs readable.
  let logged = false;
  const log = (line) => {
    if (logged) return;
    logged = true;
    try {
      const text = String(line);
      console.log(text.length > MAX_LOG ? text.slice(0, MAX_LOG - 3) + '...' : text);
    } catch (_) { /* nothing left to do */ }
  };
  let failClosed = false;
  let decided = false;
  try {
    const s = (event && event.secrets) || {};
    failClosed = text(s.TOLLGATE_FAIL_MODE).toLowerCase() === 'closed';

    const clientIds = text(s.TOLLGATE_CLIENT_IDS).split(',').map((id) => id.trim()).filter(Boolean);
    if (clientIds.length && !clientIds.includes(event?.client?.client_id)) return;

    const user = event?.user || {};
    const org = event?.organization?.id ? event.organization : null;
    const userId = text(user.user_id);
    const mode = (text(s.TOLLGATE_MODE) || 'B2C').toUpperCase();
    if (mode === 'B2B' && !org) return; // a B2B login outside an organization is not ours

    const base = text(s.TOLLGATE_URL).replace(/\/+$/, '');
    const apiKey = text(s.TOLLGATE_API_KEY);
    const problem = !base || !apiKey ? 'TOLLGATE_URL or TOLLGATE_API_KEY is not set'
      : !/^https?:\/\/[^/]/i.test(base) ? 'TOLLGATE_URL is not an http(s) URL'
      : !MODES.includes(mode) ? `TOLLGATE_MODE "${mode}" is not B2C, B2B or BOTH`
      : !userId ? 'the event has no user id' : null;
    if (problem) {
      decided = true;
      return failed(`tollgate: login of ${userId || '?'} ${failClosed ? 'denied' : 'allowed'} uncounted: ${problem}`);
    }

    const timeoutMs = clamp(parseInt(text(s.TOLLGATE_TIMEOUT_MS), 10), 100, 15000, 3000);
    const featureId = text(s.TOLLGATE_FEATURE) || 'feature-mau';
    const enforce = !['false', '0', 'no', 'off'].includes(text(s.TOLLGATE_ENFORCE).toLowerCase());
    const organization = org
      ? { id: String(org.id), name: clip(org.display_name ?? org.name) }
      : null;

    // One key per Auth0 transaction, so a retried or re-run login is counted once.
    const tx = text(event?.transaction?.id)
      || (event?.session?.id && event?.stats?.logins_count != null
        ? `${event.session.id}:${event.stats.logins_count}` : '')
      || uuid();
    const idempotencyKey = await keyOf(`auth0:${tx}:${userId}${org ? ':' + org.id : ''}`);
    const loggedInAt = new Date().toISOString();

    // event.user.app_metadata is what was stored before this login: anything may be there.
    const pending = readPending(user.app_metadata).filter((p) => p.idempotencyKey !== idempotencyKey);

    const body = {
      user: { id: userId, email: clip(user.email), name: clip(user.name) },
      organization,
      mode,
      initialPlans: {
        user: text(s.TOLLGATE_USER_PLAN) || null,
        organization: text(s.TOLLGATE_ORGANIZATION_PLAN) || null,
      },
      featureId,
      eventName: text(s.TOLLGATE_EVENT_NAME) || 'auth0-login',
      idempotencyKey,
      enforceLimit: enforce,
      loggedInAt,
      clientId: event?.client?.client_id ?? null,
      missedLogins: pending,
    };

    let answer;
    let why = null;
    try {
      // One signal for the whole exchange: it also aborts a body that trickles in slowly.
      const res = await fetch(`${base}/api/v1/integrations/auth0/logins`, {
        method: 'POST',
        headers: { 'X-API-KEY': apiKey, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        // A redirect would carry the API key elsewhere and turn the POST into a GET.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      const raw = await res.text();
      if (res.status !== 200) {
        why = `HTTP ${res.status}${serverError(raw)}`;
      } else {
        const data = parse(raw)?.data;
        if (data && (data.decision === 'ALLOW' || data.decision === 'DENY')) answer = data;
        else why = 'unreadable answer';
      }
    } catch (err) {
      why = err?.name === 'TimeoutError' || err?.name === 'AbortError'
        ? `timeout after ${timeoutMs} ms`
        : `network error: ${err?.cause?.code || err?.cause?.message || err?.message || err}`;
    }

    decided = true;
    if (!answer) {
      failed(`tollgate: login of ${userId} ${failClosed ? 'denied' : 'allowed without counting'} (${why})${failClosed ? '' : '; kept for replay'}`);
      if (!failClosed) {
        // Keep the login for replay; the server counts it once, in its own period, by key.
        const kept = pending.concat([{ organization, loggedInAt, idempotencyKey }]).slice(-MAX_PENDING);
        api.user.setAppMetadata(PENDING_KEY, kept);
      }
      return;
    }

    // The server has handled the missed logins it was sent, whatever it decided.
    if (pending.length) api.user.setAppMetadata(PENDING_KEY, null);

    if (answer.decision === 'DENY') {
      const customers = Array.isArray(answer.customers) ? answer.customers : [];
      const c = customers.find((x) => x?.activeUsers?.counted === false && x?.activeUsers?.isNewActiveUser === true)
        || customers[0] || {};
      const figures = {
        message: answer.message,
        customerId: c.customerId,
        usage: c.activeUsers?.usage,
        limit: c.activeUsers?.usageLimit,
        feature: featureId,
      };
      const template = text(s.TOLLGATE_DENY_MESSAGE) || '{message}';
      const message = template.replace(/\{(\w+)\}/g, (m, name) =>
        Object.prototype.hasOwnProperty.call(figures, name) ? (figures[name] == null ? '' : String(figures[name])) : m,
      ).trim() || FALLBACK_DENY;
      api.access.deny(message);
      return log(`tollgate: login of ${userId} denied for customer ${c.customerId ?? '?'} (${c.activeUsers?.usage ?? '?'}/${c.activeUsers?.usageLimit ?? '?'} active users): ${answer.reason ?? answer.message ?? ''}`);
    }

    const claim = text(s.TOLLGATE_CLAIM);
    if (claim && answer.customerId != null) {
      api.idToken.setCustomClaim(claim, answer.customerId);
      api.accessToken.setCustomClaim(claim, answer.customerId);
    }
    const errors = (Array.isArray(answer.missedLogins) ? answer.missedLogins : []).filter((m) => m?.decision === 'ERROR');
    if (errors.length) {
      log(`tollgate: ${errors.length} missed login(s) of ${userId} could not be replayed: ${errors[0].message ?? ''}`);
    }
  } catch (err) {
    // A bug or an unexpected api failure: still answer the login as the fail mode says.
    if (decided) return log(`tollgate: unexpected error: ${err?.message || err}`);
    failed(`tollgate: login ${failClosed ? 'denied' : 'allowed'} after an unexpected error: ${err?.message || err}`);
  }

  function failed(line) {
    log(line);
    if (!failClosed) return;
    try { api.access.deny(UNAVAILABLE); } catch (_) { /* nothing left to do */ }
  }
};

function text(value) {
  return value == null ? '' : String(value).trim();
}

// Tollgate keeps names and emails of up to 255 characters; longer ones would refuse the
// login, so they are cut (an email cut short is then left out by Tollgate).
function clip(value) {
  return value == null ? null : String(value).slice(0, 255);
}

function clamp(n, lo, hi, fallback) {
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
}

function parse(raw) {
  try { return JSON.parse(raw); } catch (_) { return null; }
}

// Tollgate's error shape is {"error": {"code", "message"}}; show it to whoever reads the logs.
function serverError(raw) {
  const e = parse(raw)?.error;
  return e && typeof e === 'object' ? ` ${e.code ?? ''}: ${e.message ?? ''}` : '';
}

// Tollgate takes keys of 1..255 printable ASCII characters; a longer or exotic user id
// (enterprise connections) gets a digest of the same text, so retries still match.
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
async function keyOf(raw) {
  if (KEY_PATTERN.test(raw)) return raw;
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(raw));
  return 'auth0:sha256:' + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function uuid() {
  try { return crypto.randomUUID(); } catch (_) {
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  }
}

// Well-formed entries only, one per key (first wins), newest MAX_PENDING.
function readPending(metadata) {
  const list = metadata && Array.isArray(metadata[PENDING_KEY]) ? metadata[PENDING_KEY] : [];
  const seen = new Set();
  const out = [];
  for (const p of list) {
    if (!p || typeof p !== 'object') continue;
    const key = typeof p.idempotencyKey === 'string' ? p.idempotencyKey : '';
    const at = typeof p.loggedInAt === 'string' ? Date.parse(p.loggedInAt) : NaN;
    if (!KEY_PATTERN.test(key) || seen.has(key) || Number.isNaN(at)) continue;
    seen.add(key);
    const o = p.organization;
    out.push({
      organization: o && typeof o === 'object' && o.id != null ? { id: String(o.id), name: o.name ?? null } : null,
      loggedInAt: p.loggedInAt,
      idempotencyKey: key,
    });
  }
  return out.slice(-MAX_PENDING);
}
