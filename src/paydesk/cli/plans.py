"""``paydesk plans bootstrap`` and ``paydesk doctor``."""

from __future__ import annotations

import typer

from paydesk.cli.common import settings_or_exit


def register(app: typer.Typer) -> None:
    """Add the ``plans`` group and ``doctor`` to ``app``."""
    plans = typer.Typer(
        help="The Free, Premium and Enterprise tiers in Stripe.", no_args_is_help=True
    )
    app.add_typer(plans, name="plans")

    @plans.command("bootstrap")
    def bootstrap() -> None:
        """Create the three tier products and prices in Stripe (idempotent, by lookup key)
        and print the STRIPE_PRICE_* lines to configure."""
        from paydesk.billing.tiers import bootstrap_plans
        from paydesk.stripe_gateway import build_gateway

        settings = settings_or_exit()
        prices = bootstrap_plans(build_gateway(settings))
        typer.echo("# Add to your configuration (k8s/configmap.yaml or the environment):")
        for tier, price in prices.items():
            typer.echo(f"STRIPE_PRICE_{tier.upper()}={price['id']}")

    @app.command("doctor")
    def doctor() -> None:
        """Check keys, Stripe access, clock skew, tier prices, the webhook endpoint and the
        database; one PASS/WARN/FAIL line each with a fix hint. Exits 1 on any FAIL."""
        from paydesk.doctor import run_checks
        from paydesk.stripe_gateway import build_gateway

        settings = settings_or_exit()
        checks = run_checks(settings, build_gateway)
        for check in checks:
            line = f"{check.status:4}  {check.name}: {check.detail}"
            if check.hint and check.status != "PASS":
                line += f"\n      fix: {check.hint}"
            typer.echo(line)
        failed = sum(check.status == "FAIL" for check in checks)
        typer.echo(f"doctor: {len(checks)} checks, {failed} failed")
        raise typer.Exit(code=1 if failed else 0)
