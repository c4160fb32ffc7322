"""The HTTP protocol around every handler: auth, parameters, idempotency, errors.

``make_endpoint(spec, state)`` wraps a handler into a Starlette endpoint. Per
request it does only what Stripe's protocol needs: check the Bearer key, parse the
form body, reject unknown parameters, replay idempotent POSTs, call the handler
(synchronously, so a handler's mutations are never interleaved with another's),
apply ``expand[]`` and serialize with orjson.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from paydesk_sandbox.errors import (
    StripeError,
    authentication_error,
    idempotency_error,
    invalid_request,
    parameter_unknown,
)
from paydesk_sandbox.expand import expand
from paydesk_sandbox.multipart import UploadedFile, files_fingerprint, is_multipart, read_multipart
from paydesk_sandbox.params import Params, parse_form
from paydesk_sandbox.routing import Ctx, RouteSpec
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
logger = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
PUBLISHABLE_PREFIX = "pk_test_"
# The calls Stripe.js makes with a publishable key; every other route refuses one.
# Calls on an intent must also carry that intent's client_secret.
PUBLISHABLE_ROUTES: dict[tuple[str, str], str | None] = {
    ("POST", "/v1/payment_methods"): None,
    ("GET", "/v1/payment_intents/{id}"): "payment_intent",
    ("POST", "/v1/payment_intents/{id}/confirm"): "payment_intent",
    ("GET", "/v1/setup_intents/{id}"): "setup_intent",
    ("POST", "/v1/setup_intents/{id}/confirm"): "setup_intent",
}
PUBLISHABLE_REFUSED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")
# Failures of parameter validation or auth are not saved (Stripe lets those be
# retried with the same key); everything else, 402s and 404s included, is.
_NOT_SAVED = frozenset({400, 401, 409, 429})


def api_key_of(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` or HTTP Basic (``curl -u key:``)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return ""
    return ""


def check_api_key(key: str | None) -> None:
    """401 unless ``key`` is a test-mode secret or restricted key."""
    if key is None:
        raise authentication_error(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    if key.startswith(LIVE_KEY_PREFIXES):
        raise authentication_error(
            "This is the Paydesk Stripe sandbox: it accepts test mode keys only "
            "(sk_test_… or rk_test_…), never live keys."
        )
    if not key.startswith(TEST_KEY_PREFIXES) or len(key) < 16 or not key.isascii():
        shown = key[:8] + "*" * 12 + key[-4:] if len(key) > 12 else "****"
        raise authentication_error(f"Invalid API Key provided: {shown}")


def is_publishable(key: str | None) -> bool:
    """Whether ``key`` is a well-formed test-mode publishable key."""
    return bool(
        key
        and key.startswith(PUBLISHABLE_PREFIX)
        and 16 <= len(key) <= 255
        and key.isascii()
        and key.replace("_", "").isalnum()
    )


def check_client_secret(state: SandboxState, kind: str, object_id: str, data: Json) -> None:
    """A publishable-key call on an intent must carry that intent's ``client_secret``."""
    secret = data.pop("client_secret", None)
    intent = state.store(kind).get(object_id)
    if intent is None:
        raise StripeError(
            404,
            "invalid_request_error",
            f"No such {kind}: '{object_id}'",
            code="resource_missing",
            param="intent",
        )
    if not isinstance(secret, str) or secret != intent.get("client_secret"):
        raise invalid_request(
            f"The client_secret provided does not match the client_secret associated with "
            f"the {'PaymentIntent' if kind == 'payment_intent' else 'SetupIntent'}.",
            param="client_secret",
        )


def json_response(
    body: Json, status: int, request_id: str, api_version: str, extra: dict[str, str] | None = None
) -> Response:
    """A JSON response with Stripe's headers."""
    headers = {"request-id": request_id, "stripe-version": api_version}
    if extra:
        headers.update(extra)
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def make_endpoint(spec: RouteSpec, state: SandboxState) -> Endpoint:
    """The Starlette endpoint for one declared route."""
    allowed = spec.params
    handler = spec.handler
    is_post = spec.method == "POST"
    reads_body = spec.method in ("POST", "PUT")  # PUT: sandbox-only routes

    async def endpoint(request: Request) -> Response:
        request_id = state.new_id("req")
        version = request.headers.get("stripe-version") or state.config.api_version
        idem_key = request.headers.get("idempotency-key") if is_post else None
        replay_slot: str | None = None
        fingerprint = ""
        try:
            publishable_kind: str | None = None
            publishable = False
            if spec.authenticated:
                api_key = api_key_of(request)
                if is_publishable(api_key):
                    route = (spec.method, spec.path)
                    if route not in PUBLISHABLE_ROUTES:
                        raise authentication_error(PUBLISHABLE_REFUSED)
                    publishable = True
                    publishable_kind = PUBLISHABLE_ROUTES[route]
                else:
                    check_api_key(api_key)
            else:
                api_key = ""
            scope = request.scope
            url_path: str = scope["path"]
            raw = scope["query_string"].decode("latin-1")
            files: dict[str, UploadedFile] = {}
            if reads_body:
                if is_multipart(request):
                    body, files = await read_multipart(request)
                else:
                    body = (await request.body()).decode()
                raw = f"{raw}&{body}" if raw else body
            if idem_key:
                if len(idem_key) > 255:
                    raise invalid_request(
                        "Keys for idempotent requests can only be 255 characters long.",
                        param="idempotency_key",
                    )
                replay_slot = f"{api_key}\x00{idem_key}"
                fingerprint = hashlib.sha256(
                    f"{spec.method} {url_path}\x00{raw}\x00{files_fingerprint(files)}".encode()
                ).hexdigest()
                saved = state.idempotency.get(replay_slot)
                if saved is not None:
                    if saved[0] != fingerprint:
                        raise idempotency_error(
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other "
                            f"than '{idem_key}' if you meant to execute a different request."
                        )
                    headers = {
                        "request-id": request_id,
                        "stripe-version": version,
                        "idempotency-key": idem_key,
                        "idempotent-replayed": "true",
                    }
                    return Response(saved[2], saved[1], headers, media_type="application/json")
            data = parse_form(raw) if raw else {}
            if publishable_kind is not None:
                check_client_secret(state, publishable_kind, request.path_params["id"], data)
            elif publishable:
                data.pop("key", None)
            if allowed is not None:
                for name in data:
                    if name not in allowed:
                        raise parameter_unknown(name)
            params = Params(data)
            ctx = Ctx(
                state=state,
                params=params,
                path=request.path_params,
                request_id=request_id,
                idempotency_key=idem_key,
                request=request,
                method=spec.method,
                url_path=url_path,
                files=files,
            )
            state.current_request = {"id": request_id, "idempotency_key": idem_key}
            try:
                result = handler(ctx)
            finally:
                state.current_request = None
            if isinstance(result, Response):
                return result
            expand_paths = params.strings("expand")
            if expand_paths:
                result = expand(state, result, expand_paths)
            status = 200
            payload = orjson.dumps(result)
        except StripeError as exc:
            status = exc.status
            payload = orjson.dumps(exc.body(request_id, state.now()))
        except Exception:
            # A sandbox bug: answer like Stripe's 500 so the SDK raises APIError
            # (and, with retries on, retries) instead of choking on a text body.
            logger.exception("sandbox handler failed: %s %s", spec.method, spec.path)
            status = 500
            error = StripeError(500, "api_error", "An unexpected error occurred in the sandbox.")
            payload = orjson.dumps(error.body(request_id, state.now()))
        headers = {"request-id": request_id, "stripe-version": version}
        if idem_key:
            headers["idempotency-key"] = idem_key
            if replay_slot is not None and status not in _NOT_SAVED:
                state.idempotency[replay_slot] = (fingerprint, status, payload)
        return Response(payload, status, headers, media_type="application/json")

    return endpoint
