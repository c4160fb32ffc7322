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
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer

from paydesk.cli.common import settings_or_exit

DEMO_DIR = Path("var")
DEMO_STATE = DEMO_DIR / "demo.json"
SANDBOX_SNAPSHOT = DEMO_DIR / "sandbox-state.json"


SANDBOX_LOG = DEMO_DIR / "sandbox.log"


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    # Linux: the sandbox gets SIGTERM (and saves its snapshot) if the demo dies hard.
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return


def _start_sandbox_process(port: int) -> subprocess.Popen[bytes]:
    """The sandbox as a process of its own: its request handling and webhook
    deliveries get a core of their own instead of sharing the demo's interpreter
    lock with the API, the worker and the seeding.

    Its own session, so a terminal's Ctrl-C reaches only the demo, which then stops
    it with exactly one SIGTERM (a second signal would make uvicorn skip the
    shutdown that saves the snapshot).
    """
    import httpx

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    log = SANDBOX_LOG.open("ab")
    argv = [sys.executable, "-m", "paydesk_sandbox", "--host", "127.0.0.1", "--port", str(port)]
    # Our own interpreter and module, fixed arguments: nothing comes from input.
    process = subprocess.Popen(  # noqa: S603
        [*argv, "--snapshot", str(SANDBOX_SNAPSHOT)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
    )
    log.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_sandbox/faults", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            typer.echo(f"paydesk: the sandbox did not start; see {SANDBOX_LOG}", err=True)
            raise typer.Exit(code=1)
        time.sleep(0.1)


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


def _prepare_stripe(state: dict[str, str], paydesk_url: str) -> list[str]:
    """Tiers and webhook endpoint in the (sandbox) Stripe account, remembered in ``state``.

    Returns what had to be re-created although an earlier run had made it (the
    sandbox's snapshot was missing or stale), so the demo can say so.
    """
    from paydesk.billing.tiers import bootstrap_plans
    from paydesk.settings import load_settings
    from paydesk.stripe_gateway import build_gateway, pinned_api_version
    from paydesk.stripe_gateway.gateway import operation_key

    env = {**os.environ, **state}
    gateway = build_gateway(load_settings(env))
    recreated: list[str] = []
    for tier, price in bootstrap_plans(gateway).items():
        name = f"STRIPE_PRICE_{tier.upper()}"
        if state.get(name) not in (None, price["id"]):
            recreated.append(f"price {tier}")
        state[name] = price["id"]
    hook_url = f"{paydesk_url}/api/webhooks/stripe"
    known = {
        str(endpoint.get("id"))
        for endpoint in gateway.list_webhook_endpoints()
        if endpoint.get("url") == hook_url and endpoint.get("status") == "enabled"
    }
    if "STRIPE_WEBHOOK_SECRET" in state and state.get("webhook_endpoint_id") not in known:
        if state.get("webhook_url") == hook_url:
            recreated.append("webhook endpoint")
        state.pop("STRIPE_WEBHOOK_SECRET", None)
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
        state["webhook_endpoint_id"] = str(endpoint["id"])
    _save(state)
    return recreated


def _keep_snapshots(sandbox_url: str, stop: threading.Event, every: float = 10.0) -> None:
    """Ask the sandbox to save its snapshot every ``every`` seconds (on its own loop,
    so objects are never serialized mid-change), so even a hard kill loses little."""
    while not stop.wait(every):
        _snapshot_now(sandbox_url)


def _snapshot_now(sandbox_url: str) -> None:
    import httpx

    try:
        httpx.post(f"{sandbox_url}/_sandbox/snapshot", timeout=30)
    except httpx.HTTPError:
        return  # the next round (or the shutdown) saves it


def _stop_sandbox(process: subprocess.Popen[bytes]) -> bool:
    """One SIGTERM: the sandbox shuts down and its lifespan saves the snapshot
    (atomically). True if it exited cleanly."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        # uvicorn shuts down (saving the snapshot), then re-raises the signal it caught.
        return process.wait(timeout=30) in (0, -signal.SIGTERM)
    except subprocess.TimeoutExpired:
        process.kill()
        return False


def _exit_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C.

    uvicorn catches SIGTERM/SIGINT, shuts the API down, restores the handlers it
    found and raises the signal again. With Python's default SIGTERM action that
    kills the process on the spot, skipping every ``finally`` (and the sandbox's
    snapshot); with this handler it becomes an exception that unwinds normally.
    """

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _seed_admin_center(
    settings: Any, engine: Any, *, seed: bool, notices: Any, api_url: str
) -> Any:
    """First run only: the first admin now, the demo business in the background
    (once the API listens, so the seeding's webhooks find it)."""
    from paydesk import demo_seed
    from paydesk.stripe_gateway import build_gateway
    from paydesk.web.notices import SeedProgress

    first_admin = demo_seed.create_first_admin(settings, engine)
    if first_admin is not None and seed:
        notices.seed = SeedProgress(customers_total=200)

        def echo(line: str) -> None:
            typer.echo(f"{time.strftime('%H:%M:%S')} {line}")

        def run() -> None:
            _wait_until_listening(api_url)
            demo_seed.seed_business(
                settings, engine, build_gateway(settings), progress=echo, tracker=notices.seed
            )

        threading.Thread(target=run, name="demo-seed", daemon=True).start()
    return first_admin


def _wait_until_listening(url: str, seconds: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""

    @app.command("demo")
    def demo(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port of the Paydesk API."),
        sandbox_port: int = typer.Option(12111, help="Port of the Stripe sandbox."),
        seed: bool = typer.Option(
            True, help="On the first run, fill the sandbox and console with a demo business."
        ),
    ) -> None:
        """Run the demo: Stripe sandbox + Paydesk API + webhook worker on SQLite under ./var/."""
        import uvicorn

        from paydesk.db.engine import create_engine
        from paydesk.db.migrate import upgrade_to_head
        from paydesk.web import create_app
        from paydesk.web.notices import Notices
        from paydesk.webhooks.process import build_worker
        from paydesk.webhooks.reconcile import build_reconciler

        base = f"http://{host}:{port}"
        use_sandbox = not os.environ.get("STRIPE_SECRET_KEY")
        state = _demo_state() if use_sandbox else {}
        _exit_on_sigterm()
        stop = threading.Event()
        sandbox: subprocess.Popen[bytes] | None = None
        if use_sandbox:
            had_run = "STRIPE_WEBHOOK_SECRET" in state
            snapshot_found = SANDBOX_SNAPSHOT.exists()
            sandbox = _start_sandbox_process(sandbox_port)
            sandbox_url = f"http://127.0.0.1:{sandbox_port}"
            state["PAYDESK_STRIPE_API_BASE"] = sandbox_url
            recreated = _prepare_stripe(state, base)
            if had_run and (recreated or not snapshot_found):
                typer.echo(
                    f"The sandbox's saved state ({SANDBOX_SNAPSHOT}) was missing or stale: "
                    f"re-created {', '.join(recreated) or 'nothing'}. Objects of earlier runs "
                    "are gone from the sandbox (the console's mirror still lists them)."
                )
            _snapshot_now(sandbox_url)
            threading.Thread(
                target=_keep_snapshots, args=(sandbox_url, stop), name="snapshots", daemon=True
            ).start()
        os.environ.update({k: v for k, v in state.items() if k.isupper()})
        settings = settings_or_exit()
        upgrade_to_head(settings.database_url.get_secret_value())
        engine = create_engine(settings.database_url.get_secret_value())
        # On SQLite a batch holds the one write turn while it applies (and re-fetches
        # from Stripe): small batches let deliveries, pages and seeding in between.
        worker = build_worker(settings, engine, batch_size=20 if settings.is_sqlite else 200)
        threading.Thread(target=worker.run, args=(stop,), name="worker", daemon=True).start()
        notices = Notices()
        reconciler = build_reconciler(settings, engine)
        if reconciler is not None:
            # The demo heals gaps quickly: its sandbox is local and cheap to list.
            reconciler.every = min(reconciler.every, 30)
            notices.reconciler = reconciler
            threading.Thread(
                target=reconciler.run, args=(stop,), name="reconciler", daemon=True
            ).start()
        first_admin = (
            _seed_admin_center(settings, engine, seed=seed, notices=notices, api_url=base)
            if use_sandbox
            else None
        )
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
                    "  Stop:           Ctrl-C or SIGTERM (the sandbox's state is saved)",
                    "",
                ]
            )
        )
        try:
            uvicorn.run(
                create_app(settings, engine=engine, notices=notices),
                host=host,
                port=port,
                log_config=None,
                server_header=False,
                # Stop within seconds even with deliveries queued for a write turn.
                timeout_graceful_shutdown=5,
                access_log=False,  # RequestContextMiddleware writes the access log
            )
        finally:
            stop.set()
            if sandbox is not None:
                if _stop_sandbox(sandbox):
                    typer.echo(f"Sandbox state saved to {SANDBOX_SNAPSHOT}.")
                else:
                    typer.echo(f"paydesk: the sandbox did not stop cleanly; see {SANDBOX_LOG}")
            engine.dispose()
