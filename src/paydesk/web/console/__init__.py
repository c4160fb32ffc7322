"""The Admin Center console at ``/admin``: server-rendered Jinja2 + htmx, no build step."""

from paydesk.web.console.views import build_console

__all__ = ["build_console"]
