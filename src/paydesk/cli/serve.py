"""``paydesk serve`` and ``paydesk migrate``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from paydesk.cli.common import EXIT_CONFIG_ERROR, settings_or_exit

if TYPE_CHECKING:
    from paydesk.settings import Settings


def check_prices_or_exit(settings: Settings) -> None:
    """Refuse to start with a wrong tier price; carry on (warned) if Stripe is unreachable."""
    from paydesk.billing.tiers import startup_price_problems
    from paydesk.errors import StripeUnavailable
    from paydesk.logs import get_logger
    from paydesk.stripe_gateway import build_gateway

    if settings.stripe_secret_key is None:
        return
    try:
        problems = startup_price_problems(settings, build_gateway(settings))
    except StripeUnavailable as exc:
        get_logger("paydesk.startup").warning("price_check_skipped", reason=exc.code)
        return
    for problem in problems:
        typer.echo(f"paydesk: configuration error: {problem}", err=True)
    if problems:
        raise typer.Exit(code=EXIT_CONFIG_ERROR)


def check_serving_or_exit(settings: Settings) -> None:
    """Exit 2, naming each variable, when a mounted feature lacks its setting."""
    from paydesk.settings import serving_problems

    problems = serving_problems(settings)
    for problem in problems:
        typer.echo(f"paydesk: configuration error: {problem.variable}: {problem.rule}", err=True)
    if problems:
        raise typer.Exit(code=EXIT_CONFIG_ERROR)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy-header options: forwarded headers believed only from our proxies.

    uvicorn's own default trusts ``X-Forwarded-For`` from 127.0.0.1 (and whatever
    ``FORWARDED_ALLOW_IPS`` says); Paydesk decides from ``PAYDESK_TRUSTED_PROXIES``
    alone, and without it the peer address is the client.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``migrate`` to ``app``."""

    @app.command("serve")
    def serve(
        host: str | None = typer.Option(None, help="Address to listen on [PAYDESK_HOST]."),
        port: int | None = typer.Option(None, help="Port to listen on [PAYDESK_PORT]."),
        workers: int = typer.Option(1, min=1, help="Worker processes."),
    ) -> None:
        """Serve the Paydesk API. Refuses to start on a configuration error."""
        import uvicorn

        from paydesk.web import create_app
        from paydesk.web.http_protocol import HeaderDeadlineProtocol

        settings = settings_or_exit()
        check_serving_or_exit(settings)
        check_prices_or_exit(settings)
        # Several workers need an importable factory (each process builds its app).
        target: Any = (
            "paydesk.web.asgi:app_from_environment" if workers > 1 else create_app(settings)
        )
        uvicorn.run(
            target,
            factory=workers > 1,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers,
            log_config=None,
            server_header=False,
            # uvicorn has no header read timeout; this protocol adds one (408, closed).
            http=HeaderDeadlineProtocol,
            **proxy_options(settings),
            # RequestContextMiddleware writes the access log (with request ids).
            access_log=False,
            # uvicorn's supervisor kills a worker that misses its ping for 5 s; a worker
            # still importing the app on a busy node would be killed over and over.
            timeout_worker_healthcheck=60,
        )

    @app.command("migrate")
    def migrate() -> None:
        """Upgrade the database (PAYDESK_DATABASE_URL) to the newest schema."""
        from paydesk.db.migrate import head_revision, upgrade_to_head

        settings = settings_or_exit()
        upgrade_to_head(settings.database_url.get_secret_value())
        typer.echo(f"database at revision {head_revision()}")
