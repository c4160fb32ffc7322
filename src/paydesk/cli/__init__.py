"""The ``paydesk`` command line: one Typer app, one module per command group.

Each module exposes ``register(app)``; heavy imports happen inside the commands so
``paydesk --help`` stays fast and production commands never import the sandbox.
"""

from __future__ import annotations

import typer

from paydesk.cli import admin as admin_cli
from paydesk.cli import analytics as analytics_cli
from paydesk.cli import config as config_cli
from paydesk.cli import demo as demo_cli
from paydesk.cli import events as events_cli
from paydesk.cli import plans as plans_cli
from paydesk.cli import sandbox as sandbox_cli
from paydesk.cli import serve as serve_cli
from paydesk.cli import trigger as trigger_cli
from paydesk.cli import webhooks as webhooks_cli
from paydesk.cli import worker as worker_cli

app = typer.Typer(
    name="paydesk",
    help="Paydesk: payment gateway and Admin Center backend on Stripe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (serve_cli, demo_cli, config_cli, plans_cli, sandbox_cli, admin_cli, analytics_cli):
    module.register(app)
for module in (worker_cli, events_cli, trigger_cli, webhooks_cli):  # the webhook pipeline
    module.register(app)


def main() -> None:
    """Entry point of the ``paydesk`` console script."""
    app()
