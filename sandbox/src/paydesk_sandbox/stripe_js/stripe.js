// Stripe.js v3 stand-in served by the Paydesk sandbox: the subset a card checkout uses,
// with Stripe's names and promise results. Not Stripe's code; same interface.
(function () {
  "use strict";
  if (window.Stripe) { return; }
  var ORIGIN = new URL(document.currentScript.src).origin;
  var sequence = 0;
  var pending = {};
  var frames = {};

  window.addEventListener("message", function (event) {
    if (event.origin !== ORIGIN) { return; }
    var data = event.data || {};
    if (!data.stripeSandbox) { return; }
    if (data.reply && pending[data.reply]) {
      var resolve = pending[data.reply];
      delete pending[data.reply];
      resolve(data.result);
    } else if (data.event && frames[data.frame]) {
      frames[data.frame].handle(data);
    }
  });

  function onBody(fn) {
    if (document.body) { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function Frame(kind, key, container) {
    var self = this;
    this.id = "__privateStripeFrame" + (++sequence);
    this.listeners = {};
    this.iframe = document.createElement("iframe");
    this.iframe.name = this.id;
    this.iframe.title = kind === "card" ? "Secure card payment input frame" : "";
    this.iframe.setAttribute("allowtransparency", "true");
    this.iframe.src = ORIGIN + "/v3/frames/" + kind + "?key=" + encodeURIComponent(key) +
      "&origin=" + encodeURIComponent(window.location.origin) + "&id=" + this.id;
    this.iframe.style.border = "0";
    this.iframe.style.width = "100%";
    if (kind === "controller") {
      this.iframe.setAttribute("aria-hidden", "true");
      this.iframe.tabIndex = -1;
      this.iframe.style.position = "absolute";
      this.iframe.style.width = "1px";
      this.iframe.style.height = "1px";
      this.iframe.style.left = "-9999px";
    } else {
      this.iframe.style.height = "48px";
    }
    this.ready = new Promise(function (resolve) { self.resolveReady = resolve; });
    frames[this.id] = this;
    onBody(function () { (container || document.body).appendChild(self.iframe); });
  }

  Frame.prototype.handle = function (data) {
    if (data.event === "ready") {
      if (data.height && this.iframe.style.height !== "1px") {
        this.iframe.style.height = Math.max(44, data.height) + "px";
      }
      this.resolveReady();
    }
    (this.listeners[data.event] || []).forEach(function (fn) {
      var payload = {};
      Object.keys(data).forEach(function (name) {
        if (["stripeSandbox", "frame", "event"].indexOf(name) < 0) { payload[name] = data[name]; }
      });
      fn(payload);
    });
  };

  Frame.prototype.call = function (op, args) {
    var self = this;
    return this.ready.then(function () {
      return new Promise(function (resolve) {
        var id = "m" + (++sequence);
        pending[id] = resolve;
        self.iframe.contentWindow.postMessage(
          { stripeSandbox: true, id: id, op: op, args: args || {} }, ORIGIN);
      });
    });
  };

  // ---- Elements -------------------------------------------------------------------
  function Element(stripe, type, options) {
    this._stripe = stripe;
    this._type = type;
    this._options = options || {};
    this._frame = null;
    this._handlers = {};
  }

  Element.prototype.mount = function (target) {
    var node = typeof target === "string" ? document.querySelector(target) : target;
    if (!node) { throw new Error("The selector you specified (" + target + ") applies to no DOM elements."); }
    this._frame = new Frame("card", this._stripe._key, node);
    var self = this;
    Object.keys(this._handlers).forEach(function (event) {
      self._frame.listeners[event] = self._handlers[event];
    });
    return this;
  };

  Element.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    if (this._frame) { this._frame.listeners[event] = this._handlers[event]; }
    return this;
  };

  Element.prototype.focus = function () { if (this._frame) { this._frame.call("focus"); } };
  Element.prototype.clear = function () { if (this._frame) { this._frame.call("clear"); } };
  Element.prototype.unmount = function () {
    if (this._frame && this._frame.iframe.parentNode) { this._frame.iframe.parentNode.removeChild(this._frame.iframe); }
  };
  Element.prototype.destroy = Element.prototype.unmount;

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = options || {};
    this._elements = [];
  }

  Elements.prototype.create = function (type, options) {
    if (type !== "card" && type !== "payment") {
      throw new Error("The sandbox's Stripe.js supports the 'card' and 'payment' elements, not '" + type + "'.");
    }
    var element = new Element(this._stripe, type, options);
    this._elements.push(element);
    return element;
  };

  Elements.prototype.getElement = function (type) {
    for (var i = 0; i < this._elements.length; i++) {
      if (this._elements[i]._type === type) { return this._elements[i]; }
    }
    return null;
  };

  Elements.prototype.submit = function () { return Promise.resolve({}); };

  // ---- Stripe ---------------------------------------------------------------------
  function intentId(clientSecret) {
    if (typeof clientSecret !== "string" || clientSecret.indexOf("_secret_") < 0) { return null; }
    return clientSecret.split("_secret_")[0];
  }

  function integrationError(message) {
    return Promise.resolve({ error: { type: "invalid_request_error", message: message } });
  }

  function Stripe(key, options) {
    if (!(this instanceof Stripe)) { return new Stripe(key, options); }
    if (typeof key !== "string" || !/^pk_(test|live)_[A-Za-z0-9]+$/.test(key)) {
      throw new Error("Invalid API Key provided: " + String(key).slice(0, 8) + "…");
    }
    this._key = key;
    this._controller = new Frame("controller", key, null);
  }

  Stripe.prototype.elements = function (options) { return new Elements(this, options); };

  Stripe.prototype._api = function (method, path, params) {
    return this._controller.call("api", { method: method, path: path, params: params });
  };

  Stripe.prototype._paymentMethod = function (card, billingDetails) {
    if (!card || !card._frame) {
      return integrationError("Please mount the card Element before confirming.");
    }
    return card._frame.call("createPaymentMethod", { billing_details: billingDetails || {} });
  };

  Stripe.prototype.createPaymentMethod = function (data, element, extra) {
    if (typeof data === "string") { data = Object.assign({ type: data, card: element }, extra || {}); }
    data = data || {};
    if (data.elements) { data.card = data.elements.getElement("card") || data.elements.getElement("payment"); }
    if (data.type && data.type !== "card") { return integrationError("Only card PaymentMethods are supported."); }
    return this._paymentMethod(data.card, data.billing_details);
  };

  // The payment_method argument of confirm*: an id, or {card: element, billing_details}.
  Stripe.prototype._resolveMethod = function (data) {
    var method = data && data.payment_method;
    if (!method) { return Promise.resolve({ id: null }); }
    if (typeof method === "string") { return Promise.resolve({ id: method }); }
    return this._paymentMethod(method.card, method.billing_details).then(function (created) {
      return created.error ? { error: created.error } : { id: created.paymentMethod.id };
    });
  };

  function resultOf(kind, intent) {
    var lastError = kind === "payment_intent" ? intent.last_payment_error : intent.last_setup_error;
    if (intent.status === "requires_payment_method" && lastError) {
      var error = Object.assign({}, lastError);
      error[kind] = intent;
      return { error: error };
    }
    return kind === "payment_intent" ? { paymentIntent: intent } : { setupIntent: intent };
  }

  Stripe.prototype._retrieve = function (kind, clientSecret) {
    var path = (kind === "payment_intent" ? "/v1/payment_intents/" : "/v1/setup_intents/") + intentId(clientSecret);
    return this._api("GET", path, { client_secret: clientSecret });
  };

  // 3-D Secure: the sandbox's test page in a modal frame, like Stripe's challenge.
  Stripe.prototype._challenge = function (kind, intent, clientSecret) {
    var self = this;
    var backdrop = document.createElement("div");
    backdrop.setAttribute("role", "dialog");
    backdrop.setAttribute("aria-modal", "true");
    backdrop.setAttribute("aria-label", "3D Secure authentication");
    backdrop.style.position = "fixed";
    backdrop.style.inset = "0";
    backdrop.style.background = "rgba(0, 0, 0, .45)";
    backdrop.style.zIndex = "2147483647";
    backdrop.style.display = "flex";
    backdrop.style.alignItems = "center";
    backdrop.style.justifyContent = "center";
    var frame = document.createElement("iframe");
    frame.name = "__stripeSandbox3DS";
    frame.title = "3D Secure authentication";
    frame.src = ORIGIN + "/_sandbox/3ds/" + intent.id + "?embedded=1";
    frame.style.width = "min(500px, 94vw)";
    frame.style.height = "min(600px, 90vh)";
    frame.style.border = "0";
    frame.style.background = "#fff";
    frame.style.borderRadius = "6px";
    backdrop.appendChild(frame);
    document.body.appendChild(backdrop);
    frame.focus();
    return new Promise(function (resolve) {
      function poll() {
        self._retrieve(kind, clientSecret).then(function (result) {
          if (result.status === 200 && result.body.status === "requires_action") {
            window.setTimeout(poll, 300);
          } else {
            document.body.removeChild(backdrop);
            resolve(result);
          }
        });
      }
      window.setTimeout(poll, 300);
    });
  };

  Stripe.prototype._settle = function (kind, clientSecret, result, options) {
    var self = this;
    if (result.status !== 200) { return { error: result.body.error }; }
    var intent = result.body;
    if (intent.status === "requires_action" && !(options && options.handleActions === false)) {
      return this._challenge(kind, intent, clientSecret).then(function (after) {
        return after.status === 200 ? resultOf(kind, after.body) : { error: after.body.error };
      });
    }
    return resultOf(kind, intent);
  };

  Stripe.prototype._confirm = function (kind, clientSecret, data, options) {
    var self = this;
    var id = intentId(clientSecret);
    if (!id) { return integrationError("Invalid value for client_secret."); }
    return this._resolveMethod(data).then(function (method) {
      if (method.error) { return { error: method.error }; }
      var params = { client_secret: clientSecret };
      if (method.id) { params.payment_method = method.id; }
      if (data && data.return_url) { params.return_url = data.return_url; }
      var path = (kind === "payment_intent" ? "/v1/payment_intents/" : "/v1/setup_intents/") + id + "/confirm";
      return self._api("POST", path, params).then(function (result) {
        return self._settle(kind, clientSecret, result, options);
      });
    });
  };

  Stripe.prototype.confirmCardPayment = function (clientSecret, data, options) {
    return this._confirm("payment_intent", clientSecret, data, options);
  };

  Stripe.prototype.confirmCardSetup = function (clientSecret, data, options) {
    return this._confirm("setup_intent", clientSecret, data, options);
  };

  function fromElements(options, kind) {
    var card = options.elements && (options.elements.getElement("payment") || options.elements.getElement("card"));
    var params = options.confirmParams || {};
    var billing = (params.payment_method_data || {}).billing_details;
    return {
      payment_method: card ? { card: card, billing_details: billing } : params.payment_method,
      return_url: params.return_url
    };
  }

  function redirectIfAsked(options, result, kind) {
    var intent = result.paymentIntent || result.setupIntent;
    var url = (options.confirmParams || {}).return_url;
    if (intent && url && options.redirect !== "if_required") {
      var separator = url.indexOf("?") < 0 ? "?" : "&";
      window.location.assign(url + separator + kind + "=" + encodeURIComponent(intent.id) +
        "&" + kind + "_client_secret=" + encodeURIComponent(intent.client_secret) +
        "&redirect_status=" + encodeURIComponent(intent.status));
    }
    return result;
  }

  Stripe.prototype.confirmPayment = function (options) {
    options = options || {};
    return this._confirm("payment_intent", options.clientSecret, fromElements(options), {})
      .then(function (result) { return redirectIfAsked(options, result, "payment_intent"); });
  };

  Stripe.prototype.confirmSetup = function (options) {
    options = options || {};
    return this._confirm("setup_intent", options.clientSecret, fromElements(options), {})
      .then(function (result) { return redirectIfAsked(options, result, "setup_intent"); });
  };

  Stripe.prototype.handleNextAction = function (options) {
    var self = this;
    var clientSecret = options && options.clientSecret;
    if (!intentId(clientSecret)) { return integrationError("Invalid value for clientSecret."); }
    var kind = clientSecret.indexOf("seti_") === 0 ? "setup_intent" : "payment_intent";
    return this._retrieve(kind, clientSecret).then(function (result) {
      return self._settle(kind, clientSecret, result, {});
    });
  };

  Stripe.prototype.handleCardAction = function (clientSecret) {
    return this.handleNextAction({ clientSecret: clientSecret });
  };

  Stripe.prototype.retrievePaymentIntent = function (clientSecret) {
    return this._retrieve("payment_intent", clientSecret).then(function (result) {
      return result.status === 200 ? { paymentIntent: result.body } : { error: result.body.error };
    });
  };

  Stripe.prototype.retrieveSetupIntent = function (clientSecret) {
    return this._retrieve("setup_intent", clientSecret).then(function (result) {
      return result.status === 200 ? { setupIntent: result.body } : { error: result.body.error };
    });
  };

  window.Stripe = Stripe;
}());
