"""``paydesk webhooks setup URL``: register Paydesk's endpoint with Stripe."""

from __future__ import annotations

from typing import Any

import typer

webhooks_app = typer.Typer(help="Webhook endpoints registered with Stripe.")


def register(app: typer.Typer) -> None:
    """Add the ``webhooks`` group to ``app``."""
    app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("setup")
def setup_command(
    url: str = typer.Argument(..., help="Public URL of POST /api/webhooks/stripe."),
    force: bool = typer.Option(False, help="Register even if this URL already has an endpoint."),
) -> None:
    """Register URL for every event Paydesk applies, at the pinned API version; print the
    secret. An endpoint already registered for URL gets its event list updated."""
    from paydesk.cli.common import settings_or_exit
    from paydesk.stripe_gateway import build_gateway, pinned_api_version
    from paydesk.stripe_gateway.gateway import operation_key
    from paydesk.webhooks.events import subscribed_events

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
    events = subscribed_events()
    if existing and not force:
        # Bring its event list up to date (a release may apply more types); the secret
        # stays as it was, shown only when the endpoint was created.
        endpoint = gateway.update_webhook_endpoint(str(existing[0]["id"]), events)
        typer.echo(
            f"{url} is already registered as {endpoint['id']}: its events are now the "
            f"{len(events)} Paydesk applies. Its secret was shown when it was created "
            "(use --force to register another endpoint)."
        )
        return
    version = pinned_api_version()
    params: Any = {
        "url": url,
        "enabled_events": events,
        "api_version": version,
        "description": "Paydesk",
    }
    endpoint = gateway.create_webhook_endpoint(
        params,
        key=operation_key("webhook_endpoint", url, len(existing)),
    )
    typer.echo(f"endpoint {endpoint['id']} → {url} (API version {version})")
    typer.echo(f"events ({len(events)}): " + ", ".join(events))
    typer.echo("")
    typer.echo("Signing secret (shown once; store it as STRIPE_WEBHOOK_SECRET):")
    typer.echo(str(endpoint.get("secret", "")))
