"""The 3-D Secure test page and its test-only completion hook.

``next_action.redirect_to_url.url`` points at ``GET /_sandbox/3ds/{intent}``, a page
with "Complete authentication" and "Fail authentication" buttons like Stripe's test
page; pressing one settles the authentication and redirects to the intent's
``return_url`` (or, inside the Stripe.js stand-in's challenge frame, ``?embedded=1``,
shows that it is done; the stand-in then reads the intent). Tests can do the same
without a browser: ``POST /_sandbox/3ds/{intent}/complete`` (or ``/fail``) answers
the intent as JSON.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, RedirectResponse, Response

from paydesk_sandbox.errors import invalid_request, resource_missing
from paydesk_sandbox.routing import Ctx, Router

Json = dict[str, Any]
router = Router()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3D Secure 2 Test Page</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:4rem auto}}
button{{font-size:1.1rem;padding:.6rem 1.4rem;margin-right:1rem}}</style></head>
<body><h1>3D Secure 2 Test Page</h1>
<p>This is a Paydesk sandbox test payment authentication page for {intent_id}
({amount}). In a live setting the cardholder's bank would ask them to authenticate.</p>
<form method="post" action="/_sandbox/3ds/{intent_id}/complete" style="display:inline">
<input type="hidden" name="redirect" value="1">{embedded}
<button id="complete">Complete authentication</button></form>
<form method="post" action="/_sandbox/3ds/{intent_id}/fail" style="display:inline">
<input type="hidden" name="redirect" value="1">{embedded}
<button id="fail">Fail authentication</button></form>
</body></html>
"""


_DONE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>3D Secure 2 Test Page</title></head>
<body><p id="done">Authentication {result}.</p></body></html>
"""


def _intent(ctx: Ctx) -> Json:
    intent_id = ctx.path["intent"]
    kind = "setup_intent" if intent_id.startswith("seti_") else "payment_intent"
    intent = ctx.state.store(kind).get(intent_id)
    if intent is None:
        raise resource_missing(kind, intent_id)
    return intent


@router.internal("GET", "/_sandbox/3ds/{intent}")
def challenge_page(ctx: Ctx) -> Response:
    """The test authentication page."""
    intent = _intent(ctx)
    amount = f"{intent['amount']} {intent['currency']}" if "amount" in intent else "card setup"
    embedded = (
        '<input type="hidden" name="embedded" value="1">' if ctx.params.string("embedded") else ""
    )
    page = _PAGE.format(
        intent_id=html.escape(intent["id"]), amount=html.escape(amount), embedded=embedded
    )
    return HTMLResponse(page)


@router.internal("POST", "/_sandbox/3ds/{intent}/{action}")
def settle_challenge(ctx: Ctx) -> Json | Response:
    """Complete or fail the challenge; a form post is redirected to ``return_url``."""
    from paydesk_sandbox.resources.payment_intents import complete_authentication
    from paydesk_sandbox.resources.setup_intents import (
        fail_setup_authentication,
        succeed_setup,
    )

    action = ctx.path["action"]
    if action not in ("complete", "fail"):
        raise invalid_request("The action must be 'complete' or 'fail'.")
    intent = _intent(ctx)
    succeed = action == "complete"
    if intent["object"] == "setup_intent":
        if intent["status"] != "requires_action":
            raise invalid_request("This SetupIntent is not awaiting authentication.")
        if succeed:
            succeed_setup(ctx.state, intent)
        else:
            fail_setup_authentication(ctx.state, intent)
    else:
        complete_authentication(ctx.state, intent, succeed=succeed)
    if ctx.params.string("embedded"):
        return HTMLResponse(_DONE.format(result="completed" if succeed else "failed"))
    return_url = ctx.state.private_of(intent["id"]).get("return_url")
    if ctx.params.string("redirect") and return_url:
        key = intent["object"]
        query = urlencode(
            {
                key: intent["id"],
                f"{key}_client_secret": intent["client_secret"],
                "redirect_status": "succeeded" if succeed else "failed",
            }
        )
        separator = "&" if "?" in return_url else "?"
        return RedirectResponse(f"{return_url}{separator}{query}", status_code=303)
    return intent
