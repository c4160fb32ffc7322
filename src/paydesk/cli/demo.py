"""``paydesk demo``: the whole thing on one laptop, no Stripe account needed."""

from __future__ import annotations

import typer

from paydesk.cli.common import settings_or_exit


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command("demo")
    def demo(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port of the Paydesk API."),
    ) -> None:
        """Migrate the SQLite database under ./var/ and serve Paydesk, printing its URL."""
        import uvicorn

        from paydesk.db.migrate import upgrade_to_head
        from paydesk.web import create_app

        settings = settings_or_exit()
        upgrade_to_head(settings.database_url.get_secret_value())
        base = f"http://{host}:{port}"
        typer.echo(f"Paydesk demo: {base}  (health: {base}/healthz, API docs: {base}/docs)")
        uvicorn.run(
            create_app(settings), host=host, port=port, log_config=None, server_header=False
        )
