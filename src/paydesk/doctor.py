"""``paydesk doctor``: the guide's troubleshooting section as checks.

Each check gives PASS, WARN or FAIL with a line of detail and, when it fails,
a hint for the fix. Checks never print a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError

from paydesk.billing.tiers import TIERS, check_price, configured_price_ids
from paydesk.db.engine import create_engine
from paydesk.db.migrate import current_revision, head_revision
from paydesk.errors import PaydeskError
from paydesk.settings import Settings
from paydesk.stripe_gateway import StripeGateway, pinned_api_version

Status = Literal["PASS", "WARN", "FAIL"]
# Stripe's signature tolerance is 300 s; warn well before skew breaks verification.
MAX_CLOCK_SKEW_S = 60
WEBHOOK_PATH = "/api/webhooks/stripe"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    status: Status
    name: str
    detail: str
    hint: str = ""


def check_keys(settings: Settings) -> Iterator[Check]:
    """Key format and mode against the environment (already enforced at load)."""
    mode = settings.key_mode
    if mode is None:
        yield Check(
            "FAIL",
            "Stripe secret key",
            "STRIPE_SECRET_KEY is not set",
            "set a test key (sk_test_…) from Dashboard → Developers → API keys",
        )
        return
    yield Check("PASS", "Stripe key mode", f"{mode} key in {settings.env}")
    if settings.stripe_publishable_key is None:
        yield Check(
            "WARN",
            "Stripe publishable key",
            "STRIPE_PUBLISHABLE_KEY is not set",
            "the front end needs it for Stripe Elements",
        )
    else:
        yield Check("PASS", "Stripe publishable key", f"{mode} key, matches the secret key")
    if settings.stripe_webhook_secrets:
        count = len(settings.stripe_webhook_secrets)
        yield Check("PASS", "Webhook secret", f"{count} whsec_ secret(s) configured")
    else:
        yield Check(
            "FAIL",
            "Webhook secret",
            "STRIPE_WEBHOOK_SECRET is not set",
            "run `paydesk webhooks setup URL` and set the printed secret",
        )


def check_serving(settings: Settings) -> Iterator[Check]:
    """What `paydesk serve` refuses to start without (outside development)."""
    from paydesk.settings import serving_problems

    problems = serving_problems(settings)
    for problem in problems:
        yield Check(
            "FAIL",
            "Serving settings",
            f"{problem.variable}: {problem.rule}",
            'docs/OPERATIONS.md, "Create the Secret"',
        )
    if not problems:
        yield Check(
            "PASS", "Serving settings", f"every mounted feature configured ({settings.env})"
        )
    if settings.env != "development" and not settings.trusted_proxies:
        yield Check(
            "WARN",
            "Trusted proxies",
            "PAYDESK_TRUSTED_PROXIES is not set: behind a proxy, audit sees its address",
            "set it to the ingress controller's address range",
        )


def check_stripe(settings: Settings, gateway: StripeGateway) -> Iterator[Check]:
    """Key accepted by Stripe, clock skew, prices, webhook endpoint."""
    try:
        server_time = gateway.server_time()
    except PaydeskError as exc:
        yield Check(
            "FAIL",
            "Stripe accepts the key",
            exc.message,
            "check the key is not revoked and is of the right mode (test vs live)",
        )
        return
    yield Check("PASS", "Stripe accepts the key", f"API version {pinned_api_version()}")
    if server_time is not None:
        skew = abs((datetime.now(UTC) - server_time).total_seconds())
        if skew > MAX_CLOCK_SKEW_S:
            yield Check(
                "FAIL",
                "Clock skew",
                f"{skew:.0f} s off Stripe's clock",
                "sync the clock (NTP): webhook signatures expire after 300 s",
            )
        else:
            yield Check("PASS", "Clock skew", f"{skew:.0f} s")
    prices = configured_price_ids(settings)
    for tier in TIERS:
        problem = check_price(tier, prices[tier.key], gateway)
        if problem is None:
            yield Check("PASS", f"Price {tier.variable}", f"{tier.name}: active, monthly")
        else:
            yield Check(
                "FAIL",
                f"Price {tier.variable}",
                problem.problem,
                "run `paydesk plans bootstrap` and set the printed ids",
            )
    yield _check_webhook_endpoint(settings, gateway)


def _check_webhook_endpoint(settings: Settings, gateway: StripeGateway) -> Check:
    from paydesk.webhooks.events import subscribed_events

    hint = "run `paydesk webhooks setup https://<host>/api/webhooks/stripe`"
    endpoints = [e for e in gateway.list_webhook_endpoints() if WEBHOOK_PATH in e.get("url", "")]
    if not endpoints:
        return Check("FAIL", "Webhook endpoint", f"none registered for {WEBHOOK_PATH}", hint)
    plain = [e["url"] for e in endpoints if str(e.get("url", "")).startswith("http://")]
    if plain and settings.env != "development":
        return Check(
            "FAIL",
            "Webhook endpoint",
            f"{plain[0]} is plain http:// in {settings.env}",
            "register an https:// URL (`paydesk webhooks setup https://…`) and delete this one",
        )
    for endpoint in endpoints:
        enabled = set(endpoint.get("enabled_events") or [])
        wanted = subscribed_events()
        missing = [e for e in wanted if e not in enabled and "*" not in enabled]
        if endpoint.get("status") == "enabled" and not missing:
            version = endpoint.get("api_version")
            if version and version != pinned_api_version():
                return Check(
                    "WARN",
                    "Webhook endpoint",
                    f"{endpoint['url']} uses API {version}",
                    f"recreate it with API version {pinned_api_version()}",
                )
            return Check(
                "PASS", "Webhook endpoint", f"{endpoint['url']} gets the {len(wanted)} events"
            )
    return Check(
        "FAIL",
        "Webhook endpoint",
        "registered, but disabled or missing events Paydesk applies",
        hint + " again: it updates the event list",
    )


def check_database(settings: Settings) -> Check:
    """The database is reachable and at the head migration."""
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        return Check(
            "FAIL",
            "Database",
            f"unreachable ({type(exc).__name__})",
            "check PAYDESK_DATABASE_URL and that the server runs",
        )
    finally:
        engine.dispose()
    head = head_revision()
    if revision != head:
        return Check(
            "FAIL",
            "Database",
            f"at {revision or 'no'} revision, code expects {head}",
            "run `paydesk migrate`",
        )
    return Check("PASS", "Database", f"at head revision {head}")


def check_event_gap(
    settings: Settings, gateway: StripeGateway, *, grace_seconds: float | None = None
) -> Check:
    """Every event Stripe kept (30 days, older than a short grace) is in the inbox."""
    from paydesk.webhooks.reconcile import GRACE_SECONDS, find_gap, since_window

    engine = create_engine(settings.database_url.get_secret_value())
    try:
        gap = find_gap(
            engine,
            gateway.iter_events(since_window()),  # type: ignore[arg-type]
            store=False,
            grace_seconds=GRACE_SECONDS if grace_seconds is None else grace_seconds,
        )
    except (SQLAlchemyError, PaydeskError) as exc:
        return Check("WARN", "Webhook events", f"not compared ({type(exc).__name__})")
    finally:
        engine.dispose()
    if gap.missing:
        return Check(
            "WARN",
            "Webhook events",
            f"{gap.summary} (of {gap.listed} Stripe kept for 30 days)",
            "the worker's reconciler stores them within PAYDESK_RECONCILE_SECONDS; "
            "or run `paydesk events backfill --since 30d`",
        )
    return Check("PASS", "Webhook events", gap.summary)


def check_sandbox_deliveries(gateway: StripeGateway) -> Check:
    """Against the sandbox: its webhook deliveries that failed and are still owed.

    Stripe shows failing deliveries only in its Dashboard; the sandbox lists them at
    ``GET /_sandbox/deliveries``, so the doctor and the console's Settings & health
    page can say which events are not arriving (and why) while the sandbox retries.
    """
    try:
        listed = gateway.raw_request("get", "/_sandbox/deliveries", {})
    except PaydeskError as exc:
        return Check("WARN", "Sandbox deliveries", f"not read ({type(exc).__name__})")
    failing = list((listed or {}).get("failing") or [])
    owed = int((listed or {}).get("owed") or 0)
    if not failing:
        return Check("PASS", "Sandbox deliveries", f"none failing ({owed} in flight)")
    oldest = failing[0]
    return Check(
        "WARN",
        "Sandbox deliveries",
        f"{len(failing)} failing, {owed} owed; oldest: {oldest.get('event')} after "
        f"{oldest.get('attempts')} attempts ({oldest.get('last_error') or 'no answer'})",
        "the sandbox keeps retrying; check that the webhook endpoint's URL reaches this "
        "API (`paydesk webhooks setup URL` updates it)",
    )


def run_checks(
    settings: Settings, gateway_factory: Callable[[Settings], StripeGateway]
) -> list[Check]:
    """Every check, in the order the guide's troubleshooting reads."""
    checks = list(check_keys(settings))
    checks += list(check_serving(settings))
    gateway = None
    if settings.stripe_secret_key is not None:
        gateway = gateway_factory(settings)
        checks += list(check_stripe(settings, gateway))
        if settings.stripe_api_base:
            checks.append(check_sandbox_deliveries(gateway))
    database = check_database(settings)
    checks.append(database)
    if gateway is not None and database.status == "PASS":
        checks.append(check_event_gap(settings, gateway))
    return checks
