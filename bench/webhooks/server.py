"""Serve Paydesk or the bare endpoint with identical uvicorn settings (import strings,
so ``workers`` > 1 works)."""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI


def paydesk_app() -> FastAPI:
    """Paydesk as ``paydesk serve`` builds it, from the environment (one per process)."""
    from paydesk.logs import configure_logging
    from paydesk.settings import load_settings
    from paydesk.web import create_app

    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    return create_app(settings)


def main() -> None:
    """``python -m bench.webhooks.server paydesk|bare PORT WORKERS``."""
    kind, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    target = "bench.webhooks.server:paydesk_app" if kind == "paydesk" else "bench.webhooks.bare:app"
    uvicorn.run(
        target,
        factory=kind == "paydesk",
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        # uvicorn kills a worker that does not answer its supervisor's ping within this
        # many seconds (default 5); on a busy machine a worker still importing the app
        # misses it and is restarted over and over. Same for both servers.
        timeout_worker_healthcheck=60,
    )


if __name__ == "__main__":
    main()
