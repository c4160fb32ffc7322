// The sandbox Stripe.js frames: the card field (data-role="card") and the controller.
// They talk only to their parent page, at the origin it declared, and to this origin's API.
(function () {
  "use strict";
  var query = new URLSearchParams(window.location.search);
  var key = query.get("key") || "";
  var parentOrigin = query.get("origin") || "";
  var frameId = query.get("id") || "";
  var role = document.body.dataset.role;

  function send(message) {
    message.stripeSandbox = true;
    message.frame = frameId;
    window.parent.postMessage(message, parentOrigin);
  }

  function encode(value, prefix, out) {
    if (value === null || value === undefined) { return out; }
    if (typeof value === "object") {
      Object.keys(value).forEach(function (name) {
        encode(value[name], prefix ? prefix + "[" + name + "]" : name, out);
      });
    } else {
      out.push(encodeURIComponent(prefix) + "=" + encodeURIComponent(String(value)));
    }
    return out;
  }

  function api(method, path, params) {
    if (!/^\/v1\/[a-z_]+(\/[A-Za-z0-9_]+)*$/.test(path)) {
      return Promise.resolve({ status: 400, body: { error: { type: "invalid_request_error", message: "Bad path." } } });
    }
    var body = encode(params || {}, "", []).join("&");
    var init = { method: method, headers: { "Authorization": "Bearer " + key }, credentials: "omit" };
    var url = path;
    if (method === "GET") {
      if (body) { url += "?" + body; }
    } else {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = body;
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(function (json) { return { status: response.status, body: json }; });
    }, function () {
      return { status: 0, body: { error: { type: "api_connection_error", message: "We could not reach Stripe. Check your connection and try again." } } };
    });
  }

  // ---- the card field ----------------------------------------------------------
  var inputs = {};
  var touched = {};

  function digits(text) { return (text || "").replace(/\D/g, ""); }

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var d = parseInt(number.charAt(number.length - 1 - i), 10);
      if (i % 2 === 1) { d = d * 2; if (d > 9) { d -= 9; } }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function brandOf(number) {
    if (/^4/.test(number)) { return "visa"; }
    if (/^(5[1-5]|2[2-7])/.test(number)) { return "mastercard"; }
    if (/^3[47]/.test(number)) { return "amex"; }
    if (/^6011|^65/.test(number)) { return "discover"; }
    return "unknown";
  }

  function lengthFor(brand) { return brand === "amex" ? 15 : 16; }

  function err(code, message) { return { type: "validation_error", code: code, message: message }; }

  // Stripe's messages and codes for what the card field can tell without the network.
  function check(final) {
    var number = digits(inputs.number.value);
    var brand = brandOf(number);
    var exp = digits(inputs.exp.value);
    var cvc = digits(inputs.cvc.value);
    var postal = (inputs.postal.value || "").trim();
    var problems = [];
    if (number.length < lengthFor(brand)) {
      if (final || touched.number) { problems.push(["number", err("incomplete_number", "Your card number is incomplete.")]); }
    } else if (!luhn(number)) {
      problems.push(["number", err("invalid_number", "Your card number is invalid.")]);
    }
    var month = parseInt(exp.slice(0, 2), 10);
    var year = 2000 + parseInt(exp.slice(2, 4), 10);
    if (exp.length < 4) {
      if (final || touched.exp) { problems.push(["exp", err("incomplete_expiry", "Your card's expiration date is incomplete.")]); }
    } else if (!(month >= 1 && month <= 12)) {
      problems.push(["exp", err("invalid_expiry_month", "Your card's expiration date is invalid.")]);
    } else {
      var now = new Date();
      var thisYear = now.getFullYear();
      if (year < thisYear) {
        problems.push(["exp", err("invalid_expiry_year_past", "Your card's expiration year is in the past.")]);
      } else if (year === thisYear && month < now.getMonth() + 1) {
        problems.push(["exp", err("invalid_expiry_month_past", "Your card's expiration date is in the past.")]);
      }
    }
    var cvcLength = brand === "amex" ? 4 : 3;
    if (cvc.length < cvcLength && (final || touched.cvc)) {
      problems.push(["cvc", err("incomplete_cvc", "Your card's security code is incomplete.")]);
    }
    if (postal.length < 3 && (final || touched.postal)) {
      problems.push(["postal", err("incomplete_zip", "Your postal code is incomplete.")]);
    }
    Object.keys(inputs).forEach(function (name) { inputs[name].setAttribute("aria-invalid", "false"); });
    problems.forEach(function (problem) { inputs[problem[0]].setAttribute("aria-invalid", "true"); });
    return {
      error: problems.length ? problems[0][1] : undefined,
      complete: !problems.length && number.length >= lengthFor(brand) && exp.length === 4 &&
        cvc.length >= cvcLength && postal.length >= 3,
      empty: !number && !exp && !cvc && !postal,
      brand: brand,
      number: number, month: month, year: year, cvc: cvc, postal: postal
    };
  }

  function formatNumber() {
    var number = digits(inputs.number.value).slice(0, 19);
    inputs.number.value = number.replace(/(\d{4})(?=\d)/g, "$1 ");
  }

  function formatExp() {
    var exp = digits(inputs.exp.value).slice(0, 4);
    inputs.exp.value = exp.length > 2 ? exp.slice(0, 2) + " / " + exp.slice(2) : exp;
  }

  function changed() {
    var state = check(false);
    send({ event: "change", complete: state.complete, empty: state.empty, brand: state.brand,
      error: state.error, elementType: "card" });
  }

  function createPaymentMethod(args) {
    var state = check(true);
    if (state.error) { return Promise.resolve({ error: state.error }); }
    var billing = (args && args.billing_details) || {};
    billing.address = billing.address || {};
    billing.address.postal_code = state.postal;
    return api("POST", "/v1/payment_methods", {
      type: "card",
      card: { number: state.number, exp_month: state.month, exp_year: state.year, cvc: state.cvc },
      billing_details: billing
    }).then(function (result) {
      if (result.status === 200) { return { paymentMethod: result.body }; }
      return { error: result.body.error };
    });
  }

  if (role === "card") {
    inputs = {
      number: document.getElementById("cardnumber"),
      exp: document.getElementById("exp-date"),
      cvc: document.getElementById("cvc"),
      postal: document.getElementById("postal")
    };
    inputs.number.addEventListener("input", function () { formatNumber(); changed(); });
    inputs.exp.addEventListener("input", function () { formatExp(); changed(); });
    inputs.cvc.addEventListener("input", function () {
      inputs.cvc.value = digits(inputs.cvc.value).slice(0, 4); changed();
    });
    inputs.postal.addEventListener("input", changed);
    Object.keys(inputs).forEach(function (name) {
      inputs[name].addEventListener("blur", function () { touched[name] = true; changed(); });
      inputs[name].addEventListener("focus", function () { send({ event: "focus" }); });
    });
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || event.origin !== parentOrigin) { return; }
    var data = event.data || {};
    if (!data.stripeSandbox || !data.id) { return; }
    var work;
    if (data.op === "api" && role === "controller") {
      work = api(data.args.method, data.args.path, data.args.params);
    } else if (data.op === "createPaymentMethod" && role === "card") {
      work = createPaymentMethod(data.args);
    } else if (data.op === "clear" && role === "card") {
      Object.keys(inputs).forEach(function (name) { inputs[name].value = ""; });
      touched = {};
      work = Promise.resolve({});
    } else if (data.op === "focus" && role === "card") {
      inputs.number.focus();
      work = Promise.resolve({});
    } else {
      work = Promise.resolve({ error: { type: "invalid_request_error", message: "Unsupported." } });
    }
    work.then(function (result) { send({ reply: data.id, result: result }); });
  });

  send({ event: "ready", height: document.body.scrollHeight });
}());
