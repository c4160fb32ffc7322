"""dj-stripe against the sandbox: runs inside the throwaway venv that
``test_djstripe.py`` builds (dj-stripe, Django and the stripe SDK dj-stripe pins),
never in Paydesk's own environment.

Usage: ``python djstripe_driver.py SANDBOX_URL WORKDIR``. A line protocol on
stdin/stdout (one JSON object per line) so the test drives the phases:

1. The driver migrates a SQLite database in WORKDIR, serves Django (dj-stripe's
   webhook view) on a free port and prints ``{"webhook_url": ...}``.
2. The test creates that webhook endpoint on the sandbox and sends
   ``{"endpoint": id, "secret": whsec}``; the driver syncs the endpoint into
   dj-stripe (as dj-stripe's admin does) and prints ``{"ok": true}``.
3. The test loads the sandbox (its events reach the webhook view meanwhile), waits
   for every delivery and sends ``{"sync": true}``; the driver runs
   ``djstripe_sync_models`` and prints the synced counts per model, the command's
   error output, and every webhook trigger with its ``valid``/``processed`` flags.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import sys
import threading
import uuid
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

SANDBOX_URL, WORKDIR = sys.argv[1], Path(sys.argv[2])
# A migrated empty database kept next to the venv: migrating takes a minute.
TEMPLATE = Path(sys.prefix) / "migrated.sqlite3"
DATABASE = WORKDIR / "djstripe.sqlite3"
API_KEY = "sk_test_" + "0" * 24  # dj-stripe insists on 24+ characters


def configure() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="djstripe-against-the-sandbox",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "djstripe",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(DATABASE),
                "OPTIONS": {"timeout": 60},
            }
        },
        USE_TZ=True,
        STRIPE_API_HOST=SANDBOX_URL,
        STRIPE_TEST_SECRET_KEY=API_KEY,
        STRIPE_LIVE_MODE=False,
        DJSTRIPE_FOREIGN_KEY_TO_FIELD="id",
        DJSTRIPE_WEBHOOK_VALIDATION="verify_signature",
        LOGGING={"version": 1, "disable_existing_loggers": False},
    )
    django.setup()


configure()

from django.urls import include, path  # noqa: E402

urlpatterns = [path("djstripe/", include("djstripe.urls", namespace="djstripe"))]


class _Server(WSGIServer):
    # The sandbox delivers every event at once; one request is served at a time, so
    # the rest must wait in the listen queue instead of being refused.
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve() -> int:
    """dj-stripe's webhook view on a free port, one request at a time (SQLite)."""
    from django.core.wsgi import get_wsgi_application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = make_server(
        "127.0.0.1",
        port,
        get_wsgi_application(),
        server_class=_Server,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def say(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def hear() -> dict:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(0)
    return json.loads(line)


def register_endpoint(endpoint_id: str, secret: str, hook_uuid: uuid.UUID) -> None:
    import stripe
    from djstripe.models import WebhookEndpoint

    data = stripe.WebhookEndpoint.retrieve(endpoint_id, api_key=API_KEY)
    endpoint = WebhookEndpoint.sync_from_stripe_data(data, api_key=API_KEY)
    endpoint.djstripe_uuid = hook_uuid
    endpoint.secret = secret
    endpoint.save()


def sync_all() -> dict:
    """``djstripe_sync_models`` for each model in turn, so errors name their model."""
    from django.apps import apps
    from django.core.management import call_command
    from djstripe.models import WebhookEventTrigger
    from djstripe.models.base import StripeBaseModel

    models = [
        model
        for model in apps.get_app_config("djstripe").get_models()
        if issubclass(model, StripeBaseModel)
    ]
    errors: dict[str, str] = {}
    for model in models:
        out, err = io.StringIO(), io.StringIO()
        call_command(
            "djstripe_sync_models", model.__name__, stdout=out, stderr=err, fail_on_error=False
        )
        if err.getvalue():
            errors[model.__name__] = err.getvalue()
    counts = {model.__name__: model.objects.count() for model in models}
    triggers = [
        {
            "event": (t.json_body or {}).get("id"),
            "type": (t.json_body or {}).get("type"),
            "valid": t.valid,
            "processed": t.processed,
            "exception": t.exception,
        }
        for t in WebhookEventTrigger.objects.order_by("created")
    ]
    return {"counts": counts, "errors": errors, "triggers": triggers}


def main() -> None:
    from django.core.management import call_command

    if TEMPLATE.exists():
        shutil.copyfile(TEMPLATE, DATABASE)
    call_command("migrate", verbosity=0, interactive=False)
    if not TEMPLATE.exists():
        shutil.copyfile(DATABASE, TEMPLATE)
    port = serve()
    hook_uuid = uuid.uuid4()
    say({"webhook_url": f"http://127.0.0.1:{port}/djstripe/webhook/{hook_uuid}/"})
    message = hear()
    register_endpoint(message["endpoint"], message["secret"], hook_uuid)
    say({"ok": True})
    hear()
    say(sync_all())


if __name__ == "__main__":
    main()
