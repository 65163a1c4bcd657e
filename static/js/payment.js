/*
 * Paying on a pending order's pay page (templates/orders/pay.html), with Stripe's Payment Element in its "finalize
 * payments on the server" flow:
 *   1. the element is created from the amount and currency alone (the PaymentIntent stays on the server), and
 *      stripe.js makes a PaymentMethod of what the buyer entered: card details never reach the shop;
 *   2. its id is posted to the pay page's URL, where the shop confirms the payment with Stripe;
 *   3. the answer: paid → the order page; requires_action → stripe.js authenticates the buyer (3-D Secure), then
 *      the return URL settles the order; a problem → its message above the form, to try again or another card.
 * Cards only (wallets such as Apple Pay and Google Pay pay with cards too): the shop authorizes first and captures
 * once the order is committed, which needs a method that can hold funds.
 * Needs <form data-payment-form data-publishable-key data-amount (Stripe's integer units) data-currency
 * data-return-url> holding the CSRF token, a [data-payment-element] to mount the element in, a [data-payment-error]
 * alert and a disabled submit button; data-failed-text and data-unavailable-text word its two errors in the page's
 * language. A polite live region [data-payment-status] says what is happening while the button is disabled
 * (data-processing-text, data-authenticating-text, data-paid-text: translated by the server).
 */
(function () {
  "use strict";

  var FAILED_TEXT = "The payment could not be completed. Please try again.";
  var UNAVAILABLE_TEXT = "The payment form could not be loaded. Please reload the page to try again.";

  function paymentElements(stripe, form) {
    return stripe.elements({
      mode: "payment",
      amount: parseInt(form.getAttribute("data-amount"), 10),
      currency: form.getAttribute("data-currency"),
      captureMethod: "manual",
      paymentMethodCreation: "manual",
      paymentMethodTypes: ["card"],
    });
  }

  async function post(form, paymentMethodId) {
    var body = new FormData(form); // the CSRF token
    body.set("payment_method", paymentMethodId);
    var response = await fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    return response.json().catch(function () {
      return {};
    });
  }

  function start(form) {
    var button = form.querySelector("button[type=submit]");
    var error = form.querySelector("[data-payment-error]");
    var failedText = form.getAttribute("data-failed-text") || FAILED_TEXT;
    var unavailableText = form.getAttribute("data-unavailable-text") || UNAVAILABLE_TEXT;
    var status = form.querySelector("[data-payment-status]");

    function say(name) {
      if (status) {
        status.textContent = name ? form.getAttribute(name) || "" : "";
      }
    }

    function show(message) {
      say(null);
      error.textContent = message || failedText;
      error.hidden = false;
      button.disabled = false;
    }

    if (typeof window.Stripe !== "function") {
      show(unavailableText);
      button.disabled = true;
      return;
    }
    // Stripe's own words (card errors, the element's labels) in the page's language.
    var stripe = window.Stripe(form.getAttribute("data-publishable-key"), {
      locale: document.documentElement.lang || "auto",
    });
    var elements = paymentElements(stripe, form);
    elements.create("payment").mount(form.querySelector("[data-payment-element]"));
    button.disabled = false;

    async function pay() {
      var submitted = await elements.submit();
      if (submitted.error && submitted.error.type !== "validation_error") {
        return show(submitted.error.message);
      }
      if (submitted.error) {
        say(null);
        button.disabled = false; // the element marks the fields to correct itself, next to them
        return;
      }
      var created = await stripe.createPaymentMethod({ elements: elements });
      if (created.error) {
        return show(created.error.message);
      }
      var answer = await post(form, created.paymentMethod.id);
      if (answer.status === "requires_action") {
        say("data-authenticating-text");
        var authenticated = await stripe.handleNextAction({ clientSecret: answer.client_secret });
        if (authenticated.error) {
          return show(authenticated.error.message);
        }
        // The server asks Stripe how it went: paid, or back here with the reason.
        return window.location.assign(form.getAttribute("data-return-url"));
      }
      if (answer.redirect) {
        if (answer.status) {
          say("data-paid-text"); // a problem's redirect (the order can no longer be paid) has no status
        }
        return window.location.assign(answer.redirect);
      }
      show(answer.detail);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true; // one payment at a time
      error.hidden = true;
      say("data-processing-text");
      pay().catch(function () {
        show(failedText);
      });
    });
  }

  function init() {
    var forms = document.querySelectorAll("form[data-payment-form]");
    for (var i = 0; i < forms.length; i += 1) {
      start(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
