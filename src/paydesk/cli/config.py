"""``paydesk config check``: the effective configuration, secrets masked."""

from __future__ import annotations

import typer

from paydesk.cli.common import EXIT_CONFIG_ERROR, settings_or_exit


def register(app: typer.Typer) -> None:
    """Add the ``config`` and ``docs`` groups to ``app``."""
    docs = typer.Typer(help="Generated documentation.", no_args_is_help=True)
    app.add_typer(docs, name="docs")

    @docs.command("api")
    def api_docs() -> None:
        """Print docs/API/ADMIN_API.md (Markdown from the OpenAPI document)."""
        from paydesk.web.api_docs import admin_api_markdown

        typer.echo(admin_api_markdown(), nl=False)

    group = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
    app.add_typer(group, name="config")

    @group.command("check")
    def check() -> None:
        """Validate the environment and print the effective configuration (secrets masked)."""
        from rich.console import Console
        from rich.table import Table
        from sqlalchemy.engine import make_url

        from paydesk.db.engine import normalize_url
        from paydesk.settings import mask, serving_problems
        from paydesk.stripe_gateway import pinned_api_version

        settings = settings_or_exit()
        secret = settings.stripe_secret_key
        secret_key, jwt, token = settings.secret_key, settings.jwt_secret, settings.metrics_token
        url = make_url(normalize_url(settings.database_url.get_secret_value()))
        rows = [
            ("PAYDESK_ENV", settings.env),
            ("key mode", settings.key_mode or "(no key)"),
            ("Stripe API version (pinned by SDK)", pinned_api_version()),
            ("STRIPE_SECRET_KEY", mask(secret.get_secret_value() if secret else None)),
            ("STRIPE_PUBLISHABLE_KEY", mask(settings.stripe_publishable_key)),
            (
                "STRIPE_WEBHOOK_SECRET",
                ", ".join(mask(s.get_secret_value()) for s in settings.stripe_webhook_secrets)
                or "(not set)",
            ),
            ("STRIPE_PRICE_FREE", settings.stripe_price_free or "(not set)"),
            ("STRIPE_PRICE_PREMIUM", settings.stripe_price_premium or "(not set)"),
            ("STRIPE_PRICE_ENTERPRISE", settings.stripe_price_enterprise or "(not set)"),
            ("PAYDESK_STRIPE_API_BASE", settings.stripe_api_base or "(Stripe)"),
            ("PAYDESK_DATABASE_URL", url.render_as_string(hide_password=True)),
            ("PAYDESK_HOST:PAYDESK_PORT", f"{settings.host}:{settings.port}"),
            ("PAYDESK_LOG_FORMAT / LEVEL", f"{settings.log_format} / {settings.log_level}"),
            ("PAYDESK_SECRET_KEY", mask(secret_key.get_secret_value() if secret_key else None)),
            ("PAYDESK_JWT_SECRET", mask(jwt.get_secret_value() if jwt else None)),
            ("PAYDESK_JWT_JWKS_URL", settings.jwt_jwks_url or "(not set)"),
            ("PAYDESK_JWT_ISSUER / AUDIENCE", f"{settings.jwt_issuer} / {settings.jwt_audience}"),
            ("PAYDESK_METRICS_TOKEN", mask(token.get_secret_value() if token else None)),
            ("PAYDESK_PROMETHEUS_URL", settings.prometheus_url or "(not set)"),
            ("PAYDESK_STRIPE_KEY_CREATED", str(settings.stripe_key_created or "(not set)")),
            ("PAYDESK_TRUSTED_PROXIES", ", ".join(settings.trusted_proxies) or "(none)"),
        ]
        problems = serving_problems(settings)
        verdict = "OK" if not problems else "NOT SERVABLE"
        table = Table(title=f"Paydesk configuration: {verdict}", show_lines=False)
        table.add_column("setting")
        table.add_column("value")
        for name, value in rows:
            table.add_row(name, value)
        Console(width=120).print(table)
        # The same refusal `paydesk serve` makes: exit 2, naming each variable.
        for problem in problems:
            typer.echo(
                f"paydesk: configuration error: {problem.variable}: {problem.rule}", err=True
            )
        if problems:
            raise typer.Exit(code=EXIT_CONFIG_ERROR)
