// Runs @stigg/js-client-sdk (what the browser and @stigg/react-sdk use) in Node against a
// live Tollgate and prints what it answered, as JSON, for tests/js/test_js_client.py.
//   node js_client.mjs '<json: {baseUri, apiKey, customerId, customerToken, checks, reads,
//                               initTimeoutMs?}>'
// With initTimeoutMs, initialization is waited for that long at most ("pending" if it has
// not ended by then): with the server away the SDK takes about a minute to give up.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sdk = require('@stigg/js-client-sdk');
const Stigg = sdk.Stigg ?? sdk.default ?? sdk;
const plan = JSON.parse(process.argv[2]);

const stigg = Stigg.initialize({
  apiKey: plan.apiKey,
  baseUri: plan.baseUri,
  baseEdgeUri: plan.baseUri,
  customerId: plan.customerId,
  customerToken: plan.customerToken,
  entitlementsFallback: plan.fallback ?? {},
});

const result = { initialized: null, checks: [], reads: {} };
const waiting = stigg.waitForInitialization().then(
  () => 'ok',
  (error) => String(error?.message ?? error),
);
const bound = plan.initTimeoutMs == null
  ? []
  : [new Promise((resolve) => setTimeout(() => resolve('pending'), plan.initTimeoutMs))];
result.initialized = await Promise.race([waiting, ...bound]);
for (const check of plan.checks ?? []) {
  const started = Date.now();
  const params = { featureId: check.featureId };
  const answer = check.kind === 'boolean'
    ? stigg.getBooleanEntitlement(params)
    : stigg.getMeteredEntitlement({ ...params, options: { requestedUsage: check.requestedUsage ?? 0 } });
  result.checks.push({
    hasAccess: answer.hasAccess,
    accessDeniedReason: answer.accessDeniedReason ?? null,
    isFallback: answer.isFallback ?? false,
    usageLimit: answer.usageLimit ?? null,
    currentUsage: answer.currentUsage ?? null,
    ms: Date.now() - started,
  });
}
async function read(name, call) {
  try {
    result.reads[name] = { ok: await call() };
  } catch (error) {
    result.reads[name] = { error: String(error?.message ?? error) };
  }
}
for (const name of plan.reads ?? []) {
  if (name === 'paywall') await read(name, () => stigg.getPaywall());
  if (name === 'portal') await read(name, () => stigg.getCustomerPortal());
  if (name === 'subscriptions') await read(name, () => stigg.getActiveSubscriptionsList());
  if (name === 'checkout') await read(name, () => stigg.getCheckoutState({ planId: 'plan-pro' }));
  if (name === 'customer') await read(name, () => stigg.getCustomer());
  if (name === 'fullSubscriptions') await read(name, () => stigg.getActiveSubscriptions());
  if (name === 'coupons') await read(name, () => stigg.getCoupons());
  if (name === 'refresh') await read(name, async () => { await stigg.refresh(); return stigg.getEntitlements(); });
  if (name === 'preview') await read(name, () => stigg.previewSubscription({ customerId: plan.customerId, planId: 'plan-enterprise' }));
  if (name === 'estimate') await read(name, () => stigg.estimateSubscription({ customerId: plan.customerId, planId: 'plan-enterprise' }));
  if (name === 'history') {
    await read(name, () => stigg.getUsageHistoryV2({
      customerId: plan.customerId, featureId: 'feature-seats', startDate: new Date('2020-01-01'),
    }));
  }
}
console.log(JSON.stringify(result));
process.exit(0);
