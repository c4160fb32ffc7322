"""Real processes, a private PostgreSQL and a Stripe-like sender for the fault checks.

Used by test_process_faults, test_database_faults and test_delivery_chaos. Everything
here is the real thing: ``paydesk serve`` and ``paydesk worker`` subprocesses, signed
deliveries over loopback HTTP, PostgreSQL (the shared server, or a private cluster
that a check may stop and start).

"Applied exactly once" is proven as in tests/webhooks/test_scale_out.py: every event
row is ``processed`` with ``attempts == 1`` (the attempt counter is written in the
same transaction as the event's mirror changes, so an application that was rolled
back by a crash leaves no attempt, and a second committed application would leave
two), and the mirror equals the result of applying the same events in order.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from paydesk.db.engine import create_engine
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import StripeEvent
from paydesk.stripe_gateway.webhook_signature import sign_payload
from paydesk.webhooks.events import event_from_dict
from paydesk.webhooks.process import Worker
from paydesk.webhooks.store import insert_events
from tests.support.databases import throwaway_postgres
from tests.support.servers import free_port
from tests.webhooks.support import SECRET
from tests.webhooks.synthetic import history
from tests.webhooks.test_scale_out import mirror_snapshot

__all__ = [
    "Delivery",
    "PrivateCluster",
    "Sender",
    "mirror_snapshot",
]

PATH = "/api/webhooks/stripe"
REPO = Path(__file__).resolve().parents[2]

LEASE_SECONDS = 10.0  # well above a batch's duration, even on a busy machine

# A zygote: one interpreter imports Paydesk once, then forks a child per command it
# is sent; each child runs the unmodified CLI (``paydesk serve`` / ``paydesk worker``)
# with its own log file. On a busy 2-core machine importing the app takes 10-20 s,
# which would otherwise dominate every restart after a kill.
_ZYGOTE = r"""
import json, os, signal, sys
import uvicorn, paydesk.cli, paydesk.web, paydesk.webhooks.process
import paydesk.db.engine, psycopg, sqlalchemy
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped at once
print("ready", flush=True)
while line := sys.stdin.readline():
    log_path, extra_env, *argv = line.rstrip("\n").split("\t")
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.update(json.loads(extra_env))
        out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        sys.argv = ["paydesk", *argv]
        code = 0
        try:
            paydesk.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
"""


def environment(url: str) -> dict[str, str]:
    """The environment of a Paydesk process on ``url`` accepting ``SECRET``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    env.update(
        {
            "PAYDESK_DATABASE_URL": url,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "PAYDESK_LOG_LEVEL": "WARNING",
            "PAYDESK_LOG_FORMAT": "json",
        }
    )
    return env


class Zygote:
    """Starts Paydesk commands as forks of one warm interpreter (see ``_ZYGOTE``)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(log_dir / "zygote.log").open("ab"),
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            pytest.fail(f"zygote failed: {(log_dir / 'zygote.log').read_text()[-3000:]}")

    def spawn(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
    ) -> Proc:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        log_path = self.log_dir / f"{name}.log"
        with self._lock:
            extra = orjson.dumps(env or {}).decode()
            self.process.stdin.write("\t".join([str(log_path), extra, *argv]) + "\n")
            self.process.stdin.flush()
            pid = int(self.process.stdout.readline())
        return Proc(name, pid, log_path)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def zygote(env: dict[str, str], log_dir: Path) -> Iterator[Zygote]:
    started = Zygote(env, log_dir)
    try:
        yield started
    finally:
        started.close()


@dataclass
class Proc:
    """A Paydesk process forked by the zygote (its output in ``log_path``)."""

    name: str
    pid: int
    log_path: Path

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no goodbye."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self._wait_gone(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        if not self._wait_gone(30):
            self.kill()

    def processed(self) -> int | None:
        """The ``processed=N`` of the summary a worker prints when stopped (None: none)."""
        found = re.findall(r"processed=(\d+)", self.tail(20_000))
        return int(found[-1]) if found else None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_server(zygote: Zygote, port: int, name: str = "server", timeout: float = 120) -> Proc:
    """``paydesk serve`` on ``port``; returns once it answers /healthz."""
    proc = zygote.spawn(name, ["serve", "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            pytest.fail(f"{name} exited: {proc.tail()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{name} not healthy within {timeout:.0f} s: {proc.tail()}")
        time.sleep(0.02)


def start_worker(
    zygote: Zygote,
    name: str = "worker",
    *,
    lease: float | None = LEASE_SECONDS,
    batch_size: int = 100,
) -> Proc:
    """``paydesk worker --lease`` ``lease`` seconds (None: the production 5 minutes).

    The checks kill workers on purpose and must not wait five minutes for each
    killed worker's batch to be claimed again.

    Its database sessions carry ``name`` as PostgreSQL ``application_name``, so a check
    can see in ``pg_stat_activity`` whether it is inside a transaction.
    """
    argv = ["worker", "--batch-size", str(batch_size), "--idle", "0.1"]
    url = make_url(zygote.env["PAYDESK_DATABASE_URL"])
    named = url.update_query_dict({"application_name": name})
    env = {"PAYDESK_DATABASE_URL": named.render_as_string(hide_password=False)}
    if lease is not None:
        argv += ["--lease", str(lease)]
    return zygote.spawn(name, argv, env=env)


def in_transaction(engine: Engine, application_name: str) -> bool:
    """Whether a session of ``application_name`` is inside a transaction right now."""
    with engine.connect() as connection:
        return bool(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                    "AND xact_start IS NOT NULL"
                ),
                {"name": application_name},
            ).scalar()
        )


@lru_cache(maxsize=4)
def synthetic_history(count: int) -> list[dict[str, Any]]:
    """The synthetic history every fault check uses (one per size, shared: read only)."""
    return history(count, seed=26)


_references: dict[int, Future[dict[str, list[tuple[Any, ...]]]]] = {}
_references_lock = threading.Lock()


def reference_mirror(count: int) -> Future[dict[str, list[tuple[Any, ...]]]]:
    """The mirror after applying ``synthetic_history(count)`` once, in order, one worker.

    Computed once per run in a background thread (the checks share it) on a throwaway
    database of the shared server; ``.result()`` waits for it.
    """
    with _references_lock:
        if count not in _references:
            future: Future[dict[str, list[tuple[Any, ...]]]] = Future()
            _references[count] = future

            def compute() -> None:
                try:
                    future.set_result(_in_order(synthetic_history(count)))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                    future.set_exception(exc)

            threading.Thread(target=compute, daemon=True).start()
        return _references[count]


def _in_order(events: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    # As tests/webhooks/test_scale_out.py's in_order_result, with no time limit that a
    # busy machine could hit.
    with throwaway_postgres() as url:
        migrate(url)
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                insert_events(connection, [event_from_dict(e).row() for e in events])
            worker = Worker(engine, batch_size=500)
            while worker.run_once():
                pass
            counts = status_counts(engine)
            assert counts == {"processed": len(events)}, counts
            return mirror_snapshot(engine)
        finally:
            engine.dispose()


_alembic = threading.Lock()


def migrate(url: str) -> None:
    """Upgrade ``url`` to head. Alembic's context is process-global: one at a time."""
    with _alembic:
        upgrade_to_head(url)


@contextmanager
def migrated_shared_database() -> Iterator[str]:
    """A throwaway database on the shared PostgreSQL, migrated to head."""
    with throwaway_postgres() as url:
        migrate(url)
        yield url


# -- inspecting the inbox --------------------------------------------------------------


def status_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.status, func.count()).group_by(StripeEvent.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def processed_count(engine: Engine) -> int:
    return status_counts(engine).get("processed", 0)


def stored_ids(engine: Engine) -> list[str]:
    """Every stored event id, one per row (duplicates would show twice)."""
    with Session(engine) as session:
        return [str(i) for i in session.scalars(select(StripeEvent.event_id))]


def orphaned_leases(engine: Engine) -> int:
    """Pending events leased to a worker (their ``next_attempt_at`` lies ahead)."""
    with Session(engine) as session:
        now = session.scalar(select(func.now()))
        return int(
            session.scalar(
                select(func.count()).where(
                    StripeEvent.status == "pending", StripeEvent.next_attempt_at > now
                )
            )
            or 0
        )


def database_now(engine: Engine) -> Any:
    with Session(engine) as session:
        return session.scalar(select(func.now()))


def orphaned_since(engine: Engine, killed_at: Any, lease: float = LEASE_SECONDS) -> int:
    """Events a worker killed at ``killed_at`` had claimed and never applied.

    Call it a few seconds after the kill and before its lease runs out: a claim made
    before the kill leases until at most ``killed_at + lease``, any claim made since
    leases until later, and a live worker's batch is long finished.
    """
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    StripeEvent.status == "pending",
                    StripeEvent.next_attempt_at > func.now(),
                    StripeEvent.next_attempt_at <= killed_at + timedelta(seconds=lease),
                )
            )
            or 0
        )


def applications(engine: Engine) -> dict[tuple[str, int], int]:
    """(status, attempts) → number of events."""
    with Session(engine) as session:
        rows = session.execute(
            select(StripeEvent.status, StripeEvent.attempts, func.count()).group_by(
                StripeEvent.status, StripeEvent.attempts
            )
        ).all()
    return {(str(s), int(a)): int(c) for s, a, c in rows}


# -- a sender that behaves like Stripe -------------------------------------------------


@dataclass
class Delivery:
    """One delivery attempt as the sender saw it."""

    event_id: str
    started: float
    finished: float
    status: int | None  # None: no HTTP answer (connection refused/reset, timeout)
    duplicate: bool | None = None
    error: str | None = None


@dataclass
class Sender:
    """Signs and POSTs events like Stripe; ``send_until_acknowledged`` retries like it.

    Stripe retries a delivery that got no 2xx (or no answer) with growing delays; here
    the delays are short (``first_delay`` doubling up to ``max_delay``, jittered) so a
    check finishes in seconds. Every attempt is recorded in ``log``.
    """

    base_url: str
    first_delay: float = 0.1
    max_delay: float = 2.0
    give_up_after: float = 120.0
    timeout: float = 30.0
    log: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)
    _clients: list[httpx.Client] = field(default_factory=list)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, timeout=self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def send_once(self, event: dict[str, Any], body: bytes | None = None) -> Delivery:
        body = body if body is not None else orjson.dumps(event)
        headers = {
            "Stripe-Signature": sign_payload(body.decode(), SECRET),
            "Content-Type": "application/json",
        }
        started = time.monotonic()
        try:
            response = self._client().post(PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            delivery = Delivery(
                event["id"], started, time.monotonic(), None, error=type(exc).__name__
            )
        else:
            duplicate = None
            if response.status_code == 200:
                duplicate = bool(response.json().get("duplicate"))
            delivery = Delivery(
                event["id"], started, time.monotonic(), response.status_code, duplicate
            )
        with self._lock:
            self.log.append(delivery)
        return delivery

    def send_until_acknowledged(self, event: dict[str, Any], rng: random.Random) -> Delivery:
        """Deliver ``event``, retrying non-2xx answers and failures with backoff."""
        body = orjson.dumps(event)
        deadline = time.monotonic() + self.give_up_after
        delay = self.first_delay
        while True:
            delivery = self.send_once(event, body)
            if delivery.status is not None and 200 <= delivery.status < 300:
                return delivery
            if time.monotonic() > deadline:
                return delivery  # the check sees an unacknowledged event and fails
            time.sleep(delay * rng.uniform(0.5, 1.5))
            delay = min(self.max_delay, delay * 2)


class Counter:
    """A thread-safe counter the kill/outage schedule can poll."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def summarize(log: list[Delivery]) -> dict[str, int]:
    """Counts over a sender's log."""
    answered = [d for d in log if d.status is not None]
    return {
        "attempts": len(log),
        "acknowledged": sum(1 for d in answered if d.status == 200),
        "answered_503": sum(1 for d in answered if d.status == 503),
        "no_answer": sum(1 for d in log if d.status is None),
        "other_status": sum(1 for d in answered if d.status not in (200, 503)),
    }


# -- a private PostgreSQL cluster ------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout, or PATH)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql")


class PrivateCluster:
    """A PostgreSQL cluster of our own on a free port, which a check may stop and start.

    The machine's shared server is never touched. Needs root (to run the server as the
    ``postgres`` user); fsync stays on, so an immediate stop is a crash the committed
    data must survive.
    """

    def __init__(self) -> None:
        if os.geteuid() != 0:
            pytest.fail(
                "the database-fault check runs a private PostgreSQL cluster as user postgres "
                "and must run as root (it would otherwise have to stop the shared server)"
            )
        self.bin = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="paydesk-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.data.mkdir()
        self.sockets.mkdir()
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.data, "postgres", "postgres")
        shutil.chown(self.sockets, "postgres", "postgres")
        self._as_postgres(
            [str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres"]
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, args: list[str]) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(args[:2])} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        self._as_postgres([*ctl, "-o", options, "-w", "-t", "120", "start"])

    def stop_immediately(self) -> None:
        """``pg_ctl -m immediate stop``: every backend dies, nothing is flushed politely."""
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        )

    def remove(self) -> None:
        pg_ctl = str(self.bin / "pg_ctl")
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                pg_ctl,
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def engine_for(url: str) -> Engine:
    return create_engine(url)
