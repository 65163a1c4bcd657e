/*
 * Paying by card on a pending order's pay page (templates/orders/pay.html), with Stripe's card element:
 *   1. stripe.js makes a PaymentMethod of the card in the browser: the card number never reaches the shop;
 *   2. its id is posted to the pay page's URL, where the shop confirms the payment with Stripe;
 *   3. the answer: paid → the order page; requires_action → stripe.js authenticates the buyer (3-D Secure), then
 *      the return URL settles the order; a problem → its message above the card, to try again or another card.
 * Needs <form data-card-payment data-publishable-key data-return-url> holding the CSRF token, a
 * [data-card-element] to mount the card element in, a [data-payment-error] alert and a disabled submit button.
 */
(function () {
  "use strict";

  var FAILED_TEXT = "The payment could not be completed. Please try again.";
  var UNAVAILABLE_TEXT = "The card form could not be loaded. Please reload the page to try again.";

  function start(form) {
    var button = form.querySelector("button[type=submit]");
    var error = form.querySelector("[data-payment-error]");

    function show(message) {
      error.textContent = message || FAILED_TEXT;
      error.hidden = false;
      button.disabled = false;
    }

    if (typeof window.Stripe !== "function") {
      show(UNAVAILABLE_TEXT);
      button.disabled = true;
      return;
    }
    var stripe = window.Stripe(form.getAttribute("data-publishable-key"));
    var card = stripe.elements().create("card");
    card.mount(form.querySelector("[data-card-element]"));
    button.disabled = false;

    async function post(paymentMethodId) {
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

    async function pay() {
      var created = await stripe.createPaymentMethod({ type: "card", card: card });
      if (created.error) {
        return show(created.error.message);
      }
      var answer = await post(created.paymentMethod.id);
      if (answer.status === "requires_action") {
        var authenticated = await stripe.confirmCardPayment(answer.client_secret);
        if (authenticated.error) {
          return show(authenticated.error.message);
        }
        // The server asks Stripe how it went: paid, or back here with the reason.
        return window.location.assign(form.getAttribute("data-return-url"));
      }
      if (answer.redirect) {
        return window.location.assign(answer.redirect);
      }
      show(answer.detail);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true; // one payment at a time
      error.hidden = true;
      pay().catch(function () {
        show(FAILED_TEXT);
      });
    });
  }

  function init() {
    var forms = document.querySelectorAll("form[data-card-payment]");
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
