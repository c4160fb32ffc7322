"""``paydesk webhooks setup URL``: register Paydesk's endpoint with Stripe."""

from __future__ import annotations

from typing import Any

import typer

# The guide's seven events.
GUIDE_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
    "charge.dispute.created",
    # A renewal that needs the customer: they get a pay link by email (PAYDESK_SMTP_URL).
    "invoice.payment_action_required",
    "invoice.payment_failed",
)

webhooks_app = typer.Typer(help="Webhook endpoints registered with Stripe.")


def register(app: typer.Typer) -> None:
    """Add the ``webhooks`` group to ``app``."""
    app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("setup")
def setup_command(
    url: str = typer.Argument(..., help="Public URL of POST /api/webhooks/stripe."),
    force: bool = typer.Option(False, help="Register even if this URL already has an endpoint."),
) -> None:
    """Register URL for the guide's seven events at the pinned API version; print the secret."""
    from paydesk.cli.common import settings_or_exit
    from paydesk.stripe_gateway import build_gateway, pinned_api_version
    from paydesk.stripe_gateway.gateway import operation_key

    if not url.startswith(("https://", "http://")):
        typer.echo("paydesk: URL must start with https:// (http:// only for local tests)", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    if url.startswith("http://") and settings.env != "development":
        # Events carry customer and payment data, and Stripe requires HTTPS for live
        # endpoints; staging should look like production.
        typer.echo(
            f"paydesk: {settings.env} refuses an http:// webhook URL; use https://", err=True
        )
        raise typer.Exit(2)
    gateway = build_gateway(settings)
    existing = [e for e in gateway.list_webhook_endpoints() if e.get("url") == url]
    if existing and not force:
        typer.echo(
            f"paydesk: {url} is already registered as {existing[0]['id']}; its secret was "
            "shown when it was created (use --force to register another)",
            err=True,
        )
        raise typer.Exit(1)
    version = pinned_api_version()
    params: Any = {
        "url": url,
        "enabled_events": list(GUIDE_EVENTS),
        "api_version": version,
        "description": "Paydesk",
    }
    endpoint = gateway.create_webhook_endpoint(
        params,
        key=operation_key("webhook_endpoint", url, len(existing)),
    )
    typer.echo(f"endpoint {endpoint['id']} → {url} (API version {version})")
    typer.echo("events: " + ", ".join(GUIDE_EVENTS))
    typer.echo("")
    typer.echo("Signing secret (shown once; store it as STRIPE_WEBHOOK_SECRET):")
    typer.echo(str(endpoint.get("secret", "")))
