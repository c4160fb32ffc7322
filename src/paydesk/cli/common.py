"""What every command shares: settings loaded once, logging, clean start-up errors."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported when a command runs: ``paydesk --help`` stays quick
    from paydesk.settings import Settings

EXIT_CONFIG_ERROR = 2


def settings_or_exit() -> Settings:
    """Load settings from the environment; on a broken rule print it and exit 2.

    The message names the variable and the rule only; values never reach output.
    """
    from paydesk.errors import ConfigurationError
    from paydesk.logs import configure_logging
    from paydesk.settings import load_settings

    try:
        settings = load_settings(os.environ)
    except ConfigurationError as exc:
        typer.echo(f"paydesk: configuration error: {exc.variable}: {exc.rule}", err=True)
        raise typer.Exit(code=EXIT_CONFIG_ERROR) from None
    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    return settings
