"""HTTP layer: ``create_app(settings)`` and the routers it mounts."""

from paydesk.web.app import create_app

__all__ = ["create_app"]
