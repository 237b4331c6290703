// Runs @stigg/node-server-sdk against a live Tollgate and prints what it answered, as JSON,
// for tests/js/test_node_sdk.py to compare with Tollgate's own REST answers.
//   node node_sdk.mjs '<json: {baseUri, baseEdgeUri, apiKey, checks: [...], fallback?}>'
import pkg from '@stigg/node-server-sdk';

const Stigg = pkg.Stigg ?? pkg.default ?? pkg;
const plan = JSON.parse(process.argv[2]);

const stigg = Stigg.initialize({
  apiKey: plan.apiKey,
  baseUri: plan.baseUri,
  baseEdgeUri: plan.baseEdgeUri,
  realtimeUpdatesEnabled: false,
  entitlementsFallback: plan.fallback ?? {},
});

const result = { initialized: null, checks: [] };
if (plan.waitForInitialization !== false) {
  try {
    await stigg.waitForInitialization();
    result.initialized = 'ok';
  } catch (error) {
    result.initialized = String(error?.message ?? error);
  }
}
for (const check of plan.checks ?? []) {
  const started = Date.now();
  const params = { customerId: check.customerId, featureId: check.featureId };
  let answer;
  if (check.kind === 'boolean') answer = await stigg.getBooleanEntitlement(params);
  else if (check.kind === 'numeric') answer = await stigg.getNumericEntitlement(params);
  else {
    answer = await stigg.getMeteredEntitlement({
      ...params,
      options: { requestedUsage: check.requestedUsage ?? 0 },
    });
  }
  result.checks.push({
    hasAccess: answer.hasAccess,
    accessDeniedReason: answer.accessDeniedReason ?? null,
    isFallback: answer.isFallback ?? false,
    usageLimit: answer.usageLimit ?? answer.value ?? null,
    currentUsage: answer.currentUsage ?? null,
    ms: Date.now() - started,
  });
}
console.log(JSON.stringify(result));
process.exit(0);
