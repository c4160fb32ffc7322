"""``paydesk analytics``: the rollups the business metrics read."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from paydesk.cli.common import settings_or_exit

analytics_app = typer.Typer(help="Business-metric rollups: rebuild them from the mirror.")


def register(app: typer.Typer) -> None:
    """Add the ``analytics`` group to ``app``."""
    app.add_typer(analytics_app, name="analytics")


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("a date or time, e.g. 2026-11-01 or 2026-11-01T12:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@analytics_app.command("rebuild")
def rebuild_command(
    since: str | None = typer.Option(
        None,
        help="Only days from this date (UTC, ISO 8601) on, and the customers whose "
        "subscriptions changed since; default: everything.",
    ),
    batch: int = typer.Option(500, min=1, max=100_000, help="Keys per transaction."),
) -> None:
    """Recompute the metric rollups from the mirror and the stored events.

    Run it after restoring a backup, after a backfill of events, or once after
    upgrading to the release that introduced rollups. Safe while Paydesk runs:
    each batch is one transaction, and the worker keeps recomputing what it touches.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from paydesk.analytics.rollups import rebuild
    from paydesk.db.engine import create_engine, session_factory

    settings = settings_or_exit()
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ) as bar:
            task = bar.add_task("rollups", total=None)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=f"rollups ({stage})", completed=done, total=total)

            report = rebuild(
                session_factory(engine), since=_since(since), batch=batch, progress=progress
            )
        typer.echo(f"rebuilt: days={report['days']} customers={report['customers']}")
    finally:
        engine.dispose()
