"""Structured logging with redaction of secrets and card-like numbers.

structlog renders JSON in staging/production and readable lines in development.
Standard-library records (uvicorn, SQLAlchemy, alembic) go through the same
processors, so the redaction step sees every line the process writes.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# Stripe secrets, restricted and publishable keys, and webhook signing secrets.
_STRIPE_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9+/=]+")
# 13-19 digits, optionally grouped by spaces or dashes: anything shaped like a PAN.
# Not inside a longer token (hex request ids, Stripe ids carry digit runs too).
_CARD_NUMBER = re.compile(r"(?<![0-9A-Za-z_])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z_])")

REDACTED = "[REDACTED]"


def redact_text(text: str) -> str:
    """Replace anything that looks like a Stripe key, webhook secret or card number."""
    text = _STRIPE_SECRET.sub(REDACTED, text)
    return _CARD_NUMBER.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    if isinstance(value, int) and len(str(abs(value))) >= 13:
        return redact_text(str(value))
    return value


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact every value of the event, including exceptions."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def _final_redaction(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Runs after format_exc_info, so tracebacks (which may quote values) are covered.
    return redact_processor(_logger, _method, event_dict)


def configure_logging(
    level: str = "INFO", fmt: str = "console", stream: TextIO | None = None
) -> None:
    """Route structlog and the standard library through one redacting formatter."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _final_redaction,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Paydesk writes its own access log ("request", with the request id; see
    # RequestContextMiddleware), so uvicorn's stays off: with no handler to reach,
    # uvicorn does not even build its line (it checks ``hasHandlers()``), which on
    # the webhook endpoint cost more per delivery than checking the signature.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # The Stripe SDK logs every call with its full URL at INFO, and httpx every
    # request; Paydesk's own PAYDESK_STRIPE_DEBUG log says what is needed.
    for noisy in ("stripe", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``name``."""
    return structlog.get_logger(name)
