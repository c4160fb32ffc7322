"""``paydesk demo``: the whole thing on one laptop, no Stripe account needed.

Starts the Stripe sandbox (state kept in ``var/``), creates the three tiers in
it, registers Paydesk's webhook endpoint, migrates the SQLite database, runs the
webhook worker in the background and serves the API. With ``STRIPE_SECRET_KEY``
set to a real test key, it uses Stripe's test mode instead of the sandbox.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import typer

from paydesk.cli.common import settings_or_exit

DEMO_DIR = Path("var")
DEMO_STATE = DEMO_DIR / "demo.json"
SANDBOX_SNAPSHOT = DEMO_DIR / "sandbox-state.json"


def _start_thread_server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise typer.Exit(code=1)
        time.sleep(0.02)
    return server


def _demo_state() -> dict[str, str]:
    # Sandbox-only credentials, random per installation and kept under var/
    # (git-ignored): the sandbox accepts any well-formed test key.
    if DEMO_STATE.exists():
        loaded: dict[str, str] = json.loads(DEMO_STATE.read_text())
        return loaded
    state = {
        "STRIPE_SECRET_KEY": "sk_test_demo" + secrets.token_hex(16),
        "STRIPE_PUBLISHABLE_KEY": "pk_test_demo" + secrets.token_hex(16),
    }
    _save(state)
    return state


def _save(state: dict[str, str]) -> None:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    DEMO_STATE.write_text(json.dumps(state, indent=2))
    DEMO_STATE.chmod(0o600)  # it holds the demo's (sandbox-only) secret key
    DEMO_STATE.chmod(0o600)


def _prepare_stripe(state: dict[str, str], paydesk_url: str) -> None:
    """Tiers and webhook endpoint in the (sandbox) Stripe account, remembered in ``state``."""
    from paydesk.billing.tiers import bootstrap_plans
    from paydesk.settings import load_settings
    from paydesk.stripe_gateway import build_gateway, pinned_api_version
    from paydesk.stripe_gateway.gateway import operation_key

    env = {**os.environ, **state}
    gateway = build_gateway(load_settings(env))
    for tier, price in bootstrap_plans(gateway).items():
        state[f"STRIPE_PRICE_{tier.upper()}"] = price["id"]
    hook_url = f"{paydesk_url}/api/webhooks/stripe"
    if state.get("webhook_url") != hook_url or "STRIPE_WEBHOOK_SECRET" not in state:
        # The demo listens to every event so the whole mirror stays current.
        endpoint = gateway.create_webhook_endpoint(
            {
                "url": hook_url,
                "enabled_events": ["*"],
                "api_version": pinned_api_version(),  # type: ignore[typeddict-item]
                "description": "Paydesk demo",
            },
            key=operation_key("demo-webhook", hook_url, secrets.token_hex(4)),
        )
        state["STRIPE_WEBHOOK_SECRET"] = str(endpoint["secret"])
        state["webhook_url"] = hook_url
    _save(state)


def _seed_admin_center(settings: Any, engine: Any) -> Any:
    """First run only: the first admin now, the demo business in the background."""
    from paydesk import demo_seed
    from paydesk.stripe_gateway import build_gateway

    first_admin = demo_seed.create_first_admin(settings, engine)
    if first_admin is not None:
        threading.Thread(
            target=demo_seed.seed_business,
            args=(settings, engine, build_gateway(settings)),
            kwargs={"progress": typer.echo},
            name="demo-seed",
            daemon=True,
        ).start()
    return first_admin


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command("demo")
    def demo(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port of the Paydesk API."),
        sandbox_port: int = typer.Option(12111, help="Port of the Stripe sandbox."),
    ) -> None:
        """Run the demo: Stripe sandbox + Paydesk API + webhook worker on SQLite under ./var/."""
        import uvicorn

        from paydesk.db.engine import create_engine
        from paydesk.db.migrate import upgrade_to_head
        from paydesk.web import create_app
        from paydesk.webhooks.process import build_worker

        base = f"http://{host}:{port}"
        use_sandbox = not os.environ.get("STRIPE_SECRET_KEY")
        state = _demo_state() if use_sandbox else {}
        sandbox_server = None
        if use_sandbox:
            from paydesk_sandbox.app import create_app as create_sandbox
            from paydesk_sandbox.config import SandboxConfig

            DEMO_DIR.mkdir(parents=True, exist_ok=True)
            sandbox_app = create_sandbox(config=SandboxConfig(snapshot_path=SANDBOX_SNAPSHOT))
            sandbox_server = _start_thread_server(sandbox_app, "127.0.0.1", sandbox_port)
            state["PAYDESK_STRIPE_API_BASE"] = f"http://127.0.0.1:{sandbox_port}"
            _prepare_stripe(state, base)
        os.environ.update({k: v for k, v in state.items() if k.isupper()})
        settings = settings_or_exit()
        upgrade_to_head(settings.database_url.get_secret_value())
        engine = create_engine(settings.database_url.get_secret_value())
        stop = threading.Event()
        worker = build_worker(settings, engine)
        threading.Thread(target=worker.run, args=(stop,), name="worker", daemon=True).start()
        first_admin = _seed_admin_center(settings, engine) if use_sandbox else None
        from paydesk.web.portal.demo_link import demo_portal_url

        portal_url = demo_portal_url(settings, engine, base) if use_sandbox else None

        stripe_where = state.get("PAYDESK_STRIPE_API_BASE", "Stripe test mode")
        typer.echo(
            "\n".join(
                [
                    "",
                    "Paydesk demo is running.",
                    f"  API:            {base}   (docs: {base}/docs, health: {base}/healthz)",
                    f"  Stripe:         {stripe_where}",
                    f"  Database:       {settings.database_url.get_secret_value()}",
                    f"  Console:        {base}/admin",
                    *(
                        [f"  Portal:         {portal_url}  (a demo customer; single use)"]
                        if portal_url
                        else []
                    ),
                    *(
                        [
                            f"  First admin:    {first_admin.email}  password: "
                            f"{first_admin.password}  (shown once)",
                            f"  Two-factor:     {first_admin.totp_uri}",
                            "                  (add it to an authenticator app; shown once)",
                            f"  API token:      export TOKEN={first_admin.api_token}"
                            "  (admin role, 30 days, shown once)",
                        ]
                        if first_admin
                        else []
                    ),
                    "  Try:            see README.md, 'Try the demo' (curl examples)",
                    "  Stop:           Ctrl-C",
                    "",
                ]
            )
        )
        try:
            uvicorn.run(
                create_app(settings, engine=engine),
                host=host,
                port=port,
                log_config=None,
                server_header=False,
                access_log=False,  # RequestContextMiddleware writes the access log
            )
        finally:
            stop.set()
            if sandbox_server is not None:
                sandbox_server.should_exit = True
                time.sleep(0.5)
            engine.dispose()
