"""An app factory for process managers (``uvicorn --factory``, several workers).

Each worker process reads the environment itself; ``paydesk serve`` has already
refused a bad configuration before any worker starts.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from paydesk.logs import configure_logging
from paydesk.settings import load_settings
from paydesk.web.app import create_app


def app_from_environment() -> FastAPI:
    """The Paydesk app for the settings in ``os.environ``."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
