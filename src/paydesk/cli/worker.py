"""``paydesk worker``: apply stored Stripe events to the mirror."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType

import typer

from paydesk.cli.common import settings_or_exit


def register(app: typer.Typer) -> None:
    """Add ``worker`` to ``app``."""

    @app.command("worker")
    def worker(
        batch_size: int = typer.Option(200, min=1, help="Events claimed per batch."),
        max_attempts: int = typer.Option(8, min=1, help="Attempts before an event is parked."),
        idle: float = typer.Option(0.5, min=0.01, help="Seconds between polls when idle."),
        once: bool = typer.Option(False, "--once", help="Apply what is due, then exit."),
        lease: float = typer.Option(
            300.0,
            min=1.0,
            help="Seconds a claimed batch stays reserved; a crashed worker's batch is "
            "claimed again after this (a running batch keeps its events until it commits).",
        ),
    ) -> None:
        """Claim stored events and apply them; several workers may run side by side."""
        from paydesk.db.engine import create_engine
        from paydesk.webhooks.process import build_worker

        settings = settings_or_exit()
        engine = create_engine(settings.database_url.get_secret_value())
        runner = build_worker(
            settings,
            engine,
            batch_size=batch_size,
            max_attempts=max_attempts,
            lease=timedelta(seconds=lease),
        )
        try:
            if once:
                handled = runner.drain(timeout=3600)
                typer.echo(f"applied {handled} event(s)")
                return
            stop = threading.Event()

            def request_stop(_signum: int, _frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            runner.run(stop, idle_seconds=idle)
        finally:
            engine.dispose()
            counts = runner.counters
            typer.echo(
                f"worker {runner.name}: processed={counts.processed} ignored={counts.ignored} "
                f"failed={counts.failed} parked={counts.parked} busy={counts.skipped_busy} "
                f"other_api_version={counts.other_api_version} lease_lost={counts.lease_lost}",
                err=True,
            )
