// The page tests/widgets renders in Debian's chromium: Stigg's own React widgets under
// `StiggProvider`, pointed at a live Tollgate. The test passes everything in `?config=` (JSON)
// and reads back what the widgets' callbacks received from `window.tollgate.events`.
// Built at test time with esbuild from the pinned packages; nothing built is committed.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { StiggProvider, Paywall, CustomerPortal, Checkout } from '@stigg/react-sdk';
import '@stigg/react-sdk/dist/styles.css';

const config = JSON.parse(new URLSearchParams(window.location.search).get('config'));
const events = [];
window.tollgate = { events };

function record(name, value) {
  events.push({ name, value: JSON.parse(JSON.stringify(value ?? null)) });
}

function Widget() {
  switch (config.widget) {
    case 'paywall':
      return (
        <Paywall
          preferredBillingPeriod={config.billingPeriod}
          onPlanSelected={({ plan, intentionType, selectedBillingPeriod }) =>
            record('planSelected', { planId: plan.id, intentionType, selectedBillingPeriod })
          }
          onBillingPeriodChange={(period) => record('billingPeriodChanged', period)}
        />
      );
    case 'portal':
      return (
        <CustomerPortal
          onManageSubscription={({ intentionType }) => record('manageSubscription', intentionType)}
        />
      );
    case 'checkout':
      return (
        <Checkout
          planId={config.planId}
          preferredBillingPeriod={config.billingPeriod}
          disableSuccessAnimation
          onCheckoutCompleted={async (result) => record('checkoutCompleted', result)}
        />
      );
    default:
      throw new Error(`unknown widget ${config.widget}`);
  }
}

// The props a page gives StiggProvider to use Tollgate (README, "Stigg's React widgets"):
// `baseEdgeUri` is Tollgate's own address too, else the SDK looks for an edge host of its own.
createRoot(document.getElementById('root')).render(
  <StiggProvider
    apiKey={config.apiKey}
    baseUri={config.baseUri}
    baseEdgeUri={config.baseUri}
    customerId={config.customerId}
    customerToken={config.customerToken}
  >
    <Widget />
  </StiggProvider>,
);
