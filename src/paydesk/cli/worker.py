"""``paydesk worker``: apply stored Stripe events to the mirror."""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack
from datetime import timedelta
from types import FrameType

import typer


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
        metrics_port: int | None = typer.Option(
            None,
            min=1,
            max=65535,
            help="Serve this worker's Prometheus /metrics (and /healthz, /readyz) on this "
            "port. Default: the setting PAYDESK_WORKER_METRICS_PORT (unset: not served). "
            "/metrics wants the bearer token PAYDESK_METRICS_TOKEN when it is set; without "
            "one it answers in development only.",
        ),
        metrics_host: str | None = typer.Option(
            None, help="Address the metrics listen on [PAYDESK_HOST]."
        ),
    ) -> None:
        """Claim stored events and apply them; several workers may run side by side."""
        from paydesk.cli.common import settings_or_exit
        from paydesk.db.engine import create_engine
        from paydesk.logs import get_logger
        from paydesk.mail.outbox import OutboxSender, enabled, send_due
        from paydesk.webhooks.metrics import WorkerMetrics, serving_metrics
        from paydesk.webhooks.process import build_worker
        from paydesk.webhooks.reconcile import build_reconciler

        settings = settings_or_exit()
        log = get_logger("paydesk.worker")
        port = metrics_port or settings.worker_metrics_port
        metrics = WorkerMetrics()
        engine = create_engine(settings.database_url.get_secret_value())
        runner = build_worker(
            settings,
            engine,
            observers=[metrics.observe_stripe],
            batch_size=batch_size,
            max_attempts=max_attempts,
            lease=timedelta(seconds=lease),
            batch_observer=metrics.observe_batch,
        )
        metrics.watch(runner)
        try:
            with ExitStack() as stack:
                if port is not None:
                    host = metrics_host or settings.host
                    token = settings.metrics_token
                    try:
                        stack.enter_context(
                            serving_metrics(
                                metrics,
                                host=host,
                                port=port,
                                token=token.get_secret_value() if token else None,
                                open_without_token=settings.env == "development",
                            )
                        )
                    except OSError as exc:
                        typer.echo(
                            f"paydesk: cannot serve metrics on {host}:{port}: {exc.strerror}",
                            err=True,
                        )
                        raise typer.Exit(code=1) from None
                    log.info("worker_metrics_serving", host=host, port=port)
                    if token is None and settings.env != "development":
                        log.warning(
                            "worker_metrics_closed",
                            reason="PAYDESK_METRICS_TOKEN is not set: /metrics answers 404 "
                            f"in {settings.env}",
                        )
                if once:
                    handled = runner.drain(timeout=3600)
                    typer.echo(f"applied {handled} event(s)")
                    if enabled(settings):
                        typer.echo(f"sent {send_due(settings, engine)} email(s)")
                    return
                if enabled(settings):
                    # Its own thread: a slow mail server never holds up the events.
                    sender = OutboxSender(settings, engine).start()
                    stack.callback(sender.stop)
                    log.info("email_outbox_sending")
                stop = threading.Event()

                def request_stop(_signum: int, _frame: FrameType | None) -> None:
                    stop.set()

                signal.signal(signal.SIGTERM, request_stop)
                signal.signal(signal.SIGINT, request_stop)
                reconciler = build_reconciler(settings, engine, observe=metrics.observe_gap)
                if reconciler is not None:
                    threading.Thread(
                        target=reconciler.run, args=(stop,), name="reconciler", daemon=True
                    ).start()
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
