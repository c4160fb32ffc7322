"""Serve Paydesk as one API pod, with the Prometheus collector's in-process cache off."""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI


def app() -> FastAPI:
    """Paydesk from the environment; every scrape reads the database (no scrape cache)."""
    from paydesk.analytics.prometheus import PaydeskMetrics
    from paydesk.logs import configure_logging
    from paydesk.settings import load_settings
    from paydesk.web import create_app

    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    built = create_app(settings)
    # No in-process cache (the business gauges too are read on every scrape); the
    # whole-inbox counters keep their deployment-wide snapshot at the period a 5 s
    # cache gives in production (30 s).
    built.state.metrics = PaydeskMetrics(
        built.state.sessions, cache_seconds=0, inbox_seconds=30, business_seconds=0
    )
    return built


def main() -> None:
    """``python -m bench.scale.server PORT``: one uvicorn process, like one API pod's."""
    uvicorn.run(
        "bench.scale.server:app",
        factory=True,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
