"""``paydesk sandbox``: serve the offline Stripe stand-in."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``sandbox`` command to ``app``."""

    @app.command("sandbox")
    def sandbox(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(12111, help="Port to listen on."),
        snapshot: Path | None = typer.Option(  # noqa: B008 - Typer declares options this way
            None, help="Load state from this file at start and save it there at exit."
        ),
    ) -> None:
        """Serve the offline Stripe API sandbox at http://HOST:PORT/v1/."""
        # Imported here so production commands never load the sandbox.
        from paydesk.sandbox.config import SandboxConfig
        from paydesk.sandbox.server import serve

        typer.echo(f"Stripe sandbox on http://{host}:{port}/v1 (test keys only; Ctrl-C stops)")
        serve(host=host, port=port, config=SandboxConfig(snapshot_path=snapshot))
