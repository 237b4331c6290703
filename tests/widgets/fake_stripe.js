// A test double of Stripe.js v3, served to the browser in place of https://js.stripe.com/v3
// by tests/widgets. It implements what Stigg's checkout uses (Stripe Elements' `payment` and
// `address` elements, `elements.submit`, `confirmSetup`, `retrieveSetupIntent`) and talks
// to localstripe, the fake Stripe server the payments tests run: the card typed into the
// fake PaymentElement is confirmed on the setup intent there, as Stripe.js would. (localstripe
// serves a Stripe.js of its own, but with only the older card element and
// `confirmCardSetup`.) The test replaces __LOCALSTRIPE__ with localstripe's address.
(function () {
  const LOCALSTRIPE = '__LOCALSTRIPE__';

  function field(name, label) {
    const input = document.createElement('input');
    input.name = name;
    input.setAttribute('aria-label', label);
    input.placeholder = label;
    input.style.cssText = 'display:block;margin:4px 0;padding:8px;width:260px;font-size:14px';
    return input;
  }

  function makeElement(type, options) {
    const handlers = {};
    const inputs = {};
    const fire = (event, payload) => (handlers[event] || []).forEach((cb) => cb(payload));
    const element = {
      type,
      options,
      mount(node) {
        const box = document.createElement('div');
        box.dataset.fakeStripe = type;
        const names =
          type === 'payment'
            ? [['number', 'Card number'], ['expiry', 'MM / YY'], ['cvc', 'CVC']]
            : [['name', 'Full name'], ['line1', 'Address'], ['postal_code', 'Postal code']];
        for (const [name, label] of names) {
          inputs[name] = field(name, label);
          inputs[name].addEventListener('input', () => fire('change', element.value()));
          box.appendChild(inputs[name]);
        }
        node.appendChild(box);
        setTimeout(() => fire('ready', { elementType: type }), 0);
      },
      value() {
        const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value]));
        const complete = Object.values(values).every((v) => v.trim() !== '');
        if (type === 'address') {
          return {
            elementType: type,
            complete,
            value: { name: values.name, address: { line1: values.line1, postal_code: values.postal_code, country: 'US' } },
          };
        }
        return { elementType: type, complete, empty: !values.number, value: { type: 'card' }, card: values };
      },
      on(event, cb) {
        (handlers[event] = handlers[event] || []).push(cb);
        return element;
      },
      off(event, cb) {
        handlers[event] = (handlers[event] || []).filter((h) => h !== cb);
        return element;
      },
      update() {},
      blur() {},
      focus() {},
      clear() {},
      unmount() {},
      destroy() {},
    };
    return element;
  }

  window.Stripe = function Stripe(publishableKey) {
    const confirmed = {};
    const stripe = {
      _publishableKey: publishableKey,
      elements(options) {
        const created = {};
        return {
          options,
          create(type, elementOptions) {
            created[type] = makeElement(type, elementOptions);
            return created[type];
          },
          getElement(type) {
            return created[type] || null;
          },
          update() {},
          fetchUpdates: async () => ({}),
          async submit() {
            const payment = created.payment && created.payment.value();
            if (!payment || !payment.complete) {
              return { error: { type: 'validation_error', message: 'Your card details are incomplete.' } };
            }
            return {};
          },
        };
      },
      async confirmSetup({ elements }) {
        const clientSecret = elements.options.clientSecret;
        const setupIntent = clientSecret.match(/^(seti_\w+)_secret_/)[1];
        const card = elements.getElement('payment').value().card;
        const [month, year] = card.expiry.split('/').map((part) => part.trim());
        const response = await fetch(`${LOCALSTRIPE}/v1/setup_intents/${setupIntent}/confirm`, {
          method: 'POST',
          body: JSON.stringify({
            key: publishableKey,
            client_secret: clientSecret,
            payment_method_data: {
              type: 'card',
              card: { number: card.number.replace(/\s/g, ''), exp_month: month, exp_year: `20${year}`, cvc: card.cvc },
            },
          }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status !== 200 || body.error) {
          return { error: { type: 'card_error', message: (body.error && body.error.message) || 'Your card was declined.' } };
        }
        if (body.status !== 'succeeded') {
          return { error: { type: 'card_error', message: `setup_intent has status ${body.status}` } };
        }
        confirmed[clientSecret] = body;
        return { setupIntent: body };
      },
      async retrieveSetupIntent(clientSecret) {
        return { setupIntent: confirmed[clientSecret] };
      },
      async handleNextAction() {
        return { error: { message: 'the Stripe.js double does not authenticate payments' } };
      },
      // What @stripe/react-stripe-js checks an object for before taking it as Stripe.
      createToken: async () => ({}),
      createPaymentMethod: async () => ({}),
      confirmCardPayment: async () => ({}),
      _registerWrapper() {},
      registerAppInfo() {},
    };
    return stripe;
  };
})();
