"""A whole Paydesk in processes: ``paydesk sandbox``, ``paydesk serve`` and ``paydesk worker``.

Each process writes its output to a log file of its own. The sandbox has a webhook
endpoint registered for the server, so payments and refunds made through the Admin
API come back as signed deliveries from the sandbox (as they would from Stripe);
tests can also sign events themselves with ``ProcessStack.webhook_secret``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from paydesk.billing.tiers import bootstrap_plans
from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from paydesk.settings import Settings, load_settings
from paydesk.stripe_gateway import build_gateway
from paydesk.stripe_gateway.webhook_signature import sign_payload
from tests.support.servers import environment_without_paydesk, free_port
from tests.support.waiting import poll
from tests.webhooks.support import event_dict, payment_intent


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@dataclass
class ProcessStack:
    """The running processes, their logs and how to reach them."""

    base_url: str
    sandbox_url: str
    database_url: str
    env: dict[str, str]
    log_dir: Path
    webhook_secret: str
    endpoint_secret: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def signed_event(self, event: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        """A fresh ``payment_intent.succeeded`` delivery (body, headers) signed with our secret."""
        event = event or event_dict("payment_intent.succeeded", payment_intent())
        body = orjson.dumps(event)
        header = sign_payload(body.decode(), self.webhook_secret)
        return body, {"Stripe-Signature": header, "Content-Type": "application/json"}

    def check_alive(self) -> None:
        """Fail if a process has exited."""
        for name, process in self.processes.items():
            code = process.poll()
            assert code is None, f"{name} exited with {code}; see {self.log_dir / name}.log"


def _start(
    name: str, args: list[str], env: dict[str, str], log_dir: Path
) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "paydesk", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()  # the child holds its own descriptor


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def process_stack(
    log_dir: Path,
    database_url: str,
    *,
    secret_key: str,
    publishable_key: str,
    webhook_secret: str,
    paydesk_secret: str,
    log_level: str = "INFO",
    worker_args: tuple[str, ...] = ("--idle", "0.2"),
    enabled_events: list[str] | None = None,
) -> Iterator[ProcessStack]:
    """Start sandbox, migrate, register the webhook endpoint, start serve and worker."""
    log_dir.mkdir(parents=True, exist_ok=True)
    base_env = environment_without_paydesk()
    with ExitStack() as stack:
        sandbox_port = free_port()
        sandbox = _start("sandbox", ["sandbox", "--port", str(sandbox_port)], base_env, log_dir)
        stack.callback(_stop, sandbox)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        poll(lambda: _answers(sandbox_url + "/v1/balance"), timeout=60, what="the sandbox")

        env = {
            **base_env,
            "PAYDESK_ENV": "development",
            "STRIPE_SECRET_KEY": secret_key,
            "STRIPE_PUBLISHABLE_KEY": publishable_key,
            "PAYDESK_STRIPE_API_BASE": sandbox_url,
            "PAYDESK_DATABASE_URL": database_url,
            "PAYDESK_SECRET_KEY": paydesk_secret,
            "PAYDESK_LOG_LEVEL": log_level,
            "PAYDESK_LOG_FORMAT": "json",
            "PAYDESK_STRIPE_DEBUG": "true" if log_level == "DEBUG" else "false",
        }
        gateway = build_gateway(load_settings(env))
        for tier, price in bootstrap_plans(gateway).items():
            env[f"STRIPE_PRICE_{tier.upper()}"] = price["id"]
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        endpoint = gateway.create_webhook_endpoint(
            {
                "url": f"{base_url}/api/webhooks/stripe",
                "enabled_events": enabled_events or ["*"],  # type: ignore[typeddict-item]
            },
            key=uuid.uuid4().hex,
        )
        endpoint_secret = str(endpoint["secret"])
        env["STRIPE_WEBHOOK_SECRET"] = f"{webhook_secret},{endpoint_secret}"
        upgrade_to_head(database_url)

        server = _start("serve", ["serve", "--port", str(port)], env, log_dir)
        stack.callback(_stop, server)
        worker = _start("worker", ["worker", *worker_args], env, log_dir)
        stack.callback(_stop, worker)
        poll(lambda: _answers(base_url + "/healthz"), timeout=90, what="paydesk serve")

        settings = load_settings(env)
        engine = create_engine(database_url)
        stack.callback(engine.dispose)
        running = ProcessStack(
            base_url=base_url,
            sandbox_url=sandbox_url,
            database_url=database_url,
            env=env,
            log_dir=log_dir,
            webhook_secret=webhook_secret,
            endpoint_secret=endpoint_secret,
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            processes={"sandbox": sandbox, "serve": server, "worker": worker},
        )
        yield running
        running.check_alive()
