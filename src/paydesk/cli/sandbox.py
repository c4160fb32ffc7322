"""``paydesk sandbox``: serve the offline Stripe stand-in."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command to ``app``."""

    @app.command("sandbox")
    def sandbox(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(12111, help="Port to listen on."),
    ) -> None:
        """Serve the offline Stripe API sandbox at http://HOST:PORT/v1/."""
        raise typer.Exit(code=1)
