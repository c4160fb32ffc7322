"""``paydesk trigger EVENT_TYPE``: make Stripe (or the sandbox) emit an event."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``trigger`` to ``app``."""

    @app.command("trigger")
    def trigger(
        event_type: str = typer.Argument(
            "", help="e.g. payment_intent.succeeded; empty lists the supported types."
        ),
    ) -> None:
        """Perform the API calls that make Stripe emit EVENT_TYPE, like `stripe trigger`."""
        from paydesk.cli.common import settings_or_exit
        from paydesk.errors import PaydeskError
        from paydesk.stripe_gateway import build_gateway
        from paydesk.stripe_gateway.triggers import TRIGGERS, run_trigger

        if not event_type or event_type not in TRIGGERS:
            if event_type:
                typer.echo(f"paydesk: no trigger for {event_type}", err=True)
            typer.echo("supported: " + ", ".join(sorted(TRIGGERS)))
            raise typer.Exit(0 if not event_type else 2)
        settings = settings_or_exit()
        gateway = build_gateway(settings)
        try:
            steps = run_trigger(gateway, event_type)
        except PaydeskError as exc:
            typer.echo(f"paydesk: trigger failed: {exc.code}: {exc}", err=True)
            raise typer.Exit(1) from None
        for step in steps:
            typer.echo(f"  {step.request:<55} {step.object_id or step.error or ''}")
        typer.echo(f"Trigger succeeded! Check Stripe for {event_type}.")
