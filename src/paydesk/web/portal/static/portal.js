// Card entry for the portal with Stripe.js (or the sandbox's stand-in: same API).
// The card number never passes through this page: it stays in Stripe's iframe.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form || typeof Stripe !== "function") { return; }
  var prefix = form.dataset.prefix;
  var csrf = form.dataset.csrf;
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errors = document.getElementById("card-errors");
  var status = document.getElementById("pay-status");
  var button = document.getElementById("pay-button");
  var promo = document.getElementById("promotion-code");
  var promoErrors = document.getElementById("promotion-code-errors");

  card.on("change", function (event) {
    errors.textContent = event.error ? event.error.message : "";
  });

  function post(path, body) {
    return fetch(prefix + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    });
  }

  function fail(message) {
    errors.textContent = message;
    status.textContent = "";
    button.disabled = false;
  }

  function problem(result) {
    var error = (result.data && result.data.error) || {};
    return error.message || "Something went wrong; please try again.";
  }

  function messageOf(error) {
    if (error.code === "payment_intent_authentication_failure" ||
        error.code === "setup_intent_authentication_failure") {
      return "Authentication failed: the payment was not made. Try again or use another card.";
    }
    return error.message || "Your card was not accepted.";
  }

  // After Stripe.js is done, the server re-reads the outcome from Stripe.
  function finishSubscription() {
    status.textContent = "Checking the payment…";
    return post("/api/subscription/refresh").then(function (result) {
      if (result.ok && result.data.status === "active") {
        window.location.assign(prefix + "/?done=subscribed");
      } else if (result.ok) {
        fail("The payment is not complete (" + result.data.status + "). Please try again.");
      } else {
        fail(problem(result));
      }
    });
  }

  function subscribe() {
    return stripe.createPaymentMethod({ type: "card", card: card }).then(function (created) {
      if (created.error) { return fail(created.error.message); }
      status.textContent = "Subscribing…";
      return post("/api/subscribe", {
        tier: form.dataset.tier, payment_method: created.paymentMethod.id,
        promotion_code: promo ? promo.value : ""
      }).then(function (result) {
        var data = result.data;
        if (!result.ok && data.error && data.error.field === "promotion_code" && promoErrors) {
          // Shown next to the code; nothing was charged or created.
          promoErrors.textContent = data.error.message;
          promo.setAttribute("aria-invalid", "true");
          promo.focus();
          return fail("");
        }
        if (!result.ok) { return fail(data.error ? messageOf(data.error) : problem(result)); }
        if (data.status === "active") { return finishSubscription(); }
        if (data.status === "requires_action") {
          status.textContent = "Your bank asks you to confirm this payment…";
          return stripe.handleNextAction({ clientSecret: data.client_secret }).then(afterConfirm);
        }
        if (data.status === "confirm") {
          return stripe.confirmCardPayment(data.client_secret, {
            payment_method: data.payment_method
          }).then(afterConfirm);
        }
        return fail("The payment is not complete (" + data.status + ").");
      });
    });
  }

  function afterConfirm(result) {
    if (result.error) {
      // Record what Stripe says, then show the problem.
      return post("/api/subscription/refresh").then(function () { fail(messageOf(result.error)); });
    }
    return finishSubscription();
  }

  function saveCard() {
    return post("/api/setup-intent").then(function (result) {
      if (!result.ok) { return fail(problem(result)); }
      return stripe.confirmCardSetup(result.data.client_secret, {
        payment_method: { card: card }
      }).then(function (confirmed) {
        if (confirmed.error) { return fail(messageOf(confirmed.error)); }
        status.textContent = "Saving…";
        return post("/api/card", { intent: confirmed.setupIntent.id }).then(function (saved) {
          if (!saved.ok) { return fail(problem(saved)); }
          window.location.assign(prefix + "/?done=card");
        });
      });
    });
  }

  function pay() {
    var target = form.dataset.target;
    return post("/api/pay/" + encodeURIComponent(target)).then(function (result) {
      if (!result.ok) { return fail(problem(result)); }
      return stripe.confirmCardPayment(result.data.client_secret, {
        payment_method: { card: card }
      }).then(function (confirmed) {
        return post("/api/pay/" + encodeURIComponent(target) + "/refresh").then(function (fresh) {
          if (confirmed.error) { return fail(messageOf(confirmed.error)); }
          if (fresh.ok && fresh.data.paid) {
            window.location.assign(prefix + "/pay/" + encodeURIComponent(target));
          } else {
            fail(fresh.ok ? "The payment is not complete." : problem(fresh));
          }
        });
      });
    });
  }

  var flows = { subscribe: subscribe, card: saveCard, pay: pay };
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errors.textContent = "";
    if (promoErrors) { promoErrors.textContent = ""; promo.removeAttribute("aria-invalid"); }
    button.disabled = true;
    status.textContent = "Working…";
    Promise.resolve().then(flows[form.dataset.flow]).catch(function () {
      fail("Something went wrong; please try again.");
    });
  });
}());
