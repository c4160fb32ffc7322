"""``paydesk events``: list, show, replay and backfill Stripe events."""

from __future__ import annotations

from typing import Any

import typer

from paydesk.cli.common import settings_or_exit

events_app = typer.Typer(help="Stored Stripe events: list, show, replay, backfill.")


def register(app: typer.Typer) -> None:
    """Add the ``events`` group to ``app``."""
    app.add_typer(events_app, name="events")


@events_app.command("list")
def list_command(
    status: str | None = typer.Option(None, help="pending, processed, failed or ignored."),
    event_type: str | None = typer.Option(None, "--type", help="Only this event type."),
    limit: int = typer.Option(50, min=1, max=10000, help="How many, newest first."),
) -> None:
    """List stored events, newest first."""
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    from paydesk.db.engine import create_engine, session_factory
    from paydesk.webhooks.operations import list_events

    settings = settings_or_exit()
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with session_factory(engine)() as session:
            rows = list_events(session, status=status, event_type=event_type, limit=limit)
            table = Table("event", "type", "created", "status", "attempts", "outcome / error")
            for row in rows:
                created = datetime.fromtimestamp(row.created, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
                table.add_row(
                    row.event_id,
                    row.type,
                    created,
                    row.status,
                    str(row.attempts),
                    (row.last_error or row.outcome or "")[:80],
                )
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)  # piped: never wrap ids
        console.print(table)
    finally:
        engine.dispose()


@events_app.command("show")
def show_command(event_id: str = typer.Argument(..., help="The Stripe event id, evt_…")) -> None:
    """Show one stored event: its processing record, failed attempts and payload."""
    import orjson

    from paydesk.db.engine import create_engine, session_factory
    from paydesk.errors import NotFound
    from paydesk.webhooks.operations import failed_attempts, get_event

    settings = settings_or_exit()
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with session_factory(engine)() as session:
            try:
                row = get_event(session, event_id)
            except NotFound as exc:
                typer.echo(f"paydesk: {exc}", err=True)
                raise typer.Exit(1) from None
            record = {
                "event_id": row.event_id,
                "type": row.type,
                "api_version": row.api_version,
                "created": row.created,
                "source": row.source,
                "received_at": row.received_at.isoformat(),
                "status": row.status,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat(),
                "processed_at": row.processed_at.isoformat() if row.processed_at else None,
                "processing_ms": row.processing_ms,
                "outcome": row.outcome,
                "last_error": row.last_error,
                "failed_attempts": [
                    {
                        "attempt": a.attempt,
                        "at": a.at.isoformat(),
                        "worker": a.worker,
                        "error_type": a.error_type,
                        "error_message": a.error_message,
                        "outcome": a.outcome,
                    }
                    for a in failed_attempts(session, row)
                ],
                "payload": orjson.loads(row.payload),
            }
        typer.echo(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    finally:
        engine.dispose()


@events_app.command("replay")
def replay_command(
    event_id: str | None = typer.Argument(None, help="The event to apply again."),
    failed: bool = typer.Option(False, "--failed", help="Replay every failed or parked event."),
) -> None:
    """Make an event (or every failed one) due again; the worker applies it next."""
    from paydesk.db.engine import create_engine, session_factory
    from paydesk.errors import NotFound
    from paydesk.webhooks.operations import replay, replay_failed

    if bool(event_id) == failed:
        typer.echo("paydesk: give an event id or --failed (not both)", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with session_factory(engine)() as session, session.begin():
            if failed:
                count = replay_failed(session)
                typer.echo(f"{count} failed event(s) queued again")
                return
            assert event_id is not None
            try:
                replay(session, event_id)
            except NotFound as exc:
                typer.echo(f"paydesk: {exc}", err=True)
                raise typer.Exit(1) from None
            typer.echo(f"{event_id} queued again")
    finally:
        engine.dispose()


@events_app.command("backfill")
def backfill_command(
    since: str = typer.Option(..., help="From when: 12h, 3d, a Unix time or 2026-11-01."),
) -> None:
    """Fetch Stripe's events since SINCE (/v1/events, 30 days kept) and store missing ones."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from paydesk.db.engine import create_engine
    from paydesk.stripe_gateway import build_gateway
    from paydesk.webhooks.operations import BackfillResult, backfill, parse_since, since_params

    try:
        start = parse_since(since)
    except ValueError as exc:
        typer.echo(f"paydesk: --since: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    gateway = build_gateway(settings)
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[seen]} listed, {task.fields[stored]} new"),
            TimeElapsedColumn(),
        ) as progress:
            task = progress.add_task("backfilling", total=None, seen=0, stored=0)

            def update(result: BackfillResult) -> None:
                progress.update(task, seen=result.seen, stored=result.stored)

            params: Any = since_params(start)
            result = backfill(engine, gateway.iter_events(params), progress=update)
            progress.update(task, total=result.seen, completed=result.seen)
        typer.echo(
            f"backfill since {start.isoformat()}: {result.seen} listed, "
            f"{result.stored} stored, {result.seen - result.stored - result.invalid} already here"
        )
    finally:
        engine.dispose()
