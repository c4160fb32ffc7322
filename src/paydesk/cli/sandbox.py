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
        faults: str = typer.Option(
            "",
            envvar="PAYDESK_SANDBOX_FAULTS",
            help="Fail a share of /v1 requests, e.g. "
            "'share=0.3;kinds=500,429,timeout,drop_after_apply;seed=7;path=/v1/refunds;"
            "hold=35;retry_after=1' (a bare number is the share). Off by default; "
            "change it at run time with PUT /_sandbox/faults.",
        ),
    ) -> None:
        """Serve the offline Stripe API sandbox at http://HOST:PORT/v1/ (development only)."""
        # Imported here so production commands never load the sandbox; it is its own
        # distribution (sandbox/), which the production image does not contain.
        try:
            from paydesk_sandbox.cli import run
            from paydesk_sandbox.faults import parse_spec
        except ModuleNotFoundError as exc:
            typer.echo(
                "paydesk: the Stripe sandbox is a development tool and is not installed "
                "here (make venv installs it; pip install -e ./sandbox)",
                err=True,
            )
            raise typer.Exit(2) from exc

        try:
            fault_config = parse_spec(faults)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--faults") from exc
        run(host, port, snapshot, fault_config)
