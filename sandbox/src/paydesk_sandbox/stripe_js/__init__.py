"""A Stripe.js stand-in: ``GET /v3/`` and the frames it loads (offline browser tests).

Implements the subset of Stripe.js v3 that a card checkout uses, with Stripe's names
and promise results: ``Stripe(pk)``, ``elements().create('card')`` / ``mount`` /
``on('change')``, ``createPaymentMethod``, ``confirmCardPayment``, ``confirmPayment``,
``confirmCardSetup``, ``handleNextAction``, ``retrievePaymentIntent`` and
``retrieveSetupIntent``. As in Stripe.js, the card field lives in an iframe served from
the sandbox's origin (inputs with ``autocomplete="cc-number"``, ``cc-exp``, ``cc-csc``,
``postal-code``): the page never sees the number, which goes from that frame to
``POST /v1/payment_methods`` with the publishable key. API calls on intents go through
a hidden controller frame of the same origin, with the intent's ``client_secret``. 3-D
Secure opens the sandbox's test page in a modal frame.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import Response

from paydesk_sandbox.routing import Ctx, Router

HERE = Path(__file__).parent
router = Router()
_JS = "application/javascript; charset=utf-8"
_HTML = "text/html; charset=utf-8"
# The frames may be embedded by any page (as Stripe's are); they run only our script.
_FRAME_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'"
)


def _asset(name: str, media_type: str, csp: str | None = None) -> Response:
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    if csp:
        headers["content-security-policy"] = csp
    return Response((HERE / name).read_bytes(), 200, headers, media_type=media_type)


@router.internal("GET", "/v3/")
def stripe_js(_ctx: Ctx) -> Response:
    """Stripe.js v3 (the stand-in)."""
    return _asset("stripe.js", _JS)


@router.internal("GET", "/v3")
def stripe_js_no_slash(_ctx: Ctx) -> Response:
    """``https://js.stripe.com/v3`` works without the trailing slash too."""
    return _asset("stripe.js", _JS)


@router.internal("GET", "/v3/frames/card")
def card_frame(_ctx: Ctx) -> Response:
    """The card field's iframe."""
    return _asset("card.html", _HTML, _FRAME_CSP)


@router.internal("GET", "/v3/frames/controller")
def controller_frame(_ctx: Ctx) -> Response:
    """The hidden frame that makes Stripe.js's API calls."""
    return _asset("controller.html", _HTML, _FRAME_CSP)


@router.internal("GET", "/v3/frames/frame.js")
def frame_js(_ctx: Ctx) -> Response:
    """The frames' script."""
    return _asset("frame.js", _JS)


@router.internal("GET", "/v3/frames/frame.css")
def frame_css(_ctx: Ctx) -> Response:
    """The card field's style."""
    return _asset("frame.css", "text/css; charset=utf-8")
