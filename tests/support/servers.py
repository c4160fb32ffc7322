"""Real servers on loopback: an ASGI app in a background thread, or the unmodified
``paydesk serve`` / ``paydesk worker`` commands as processes forked from a warm
interpreter (a zygote), each with a log file of its own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and yield its base URL."""
    chosen = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=chosen, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{chosen}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- Paydesk commands as processes -----------------------------------------------------


def environment_without_paydesk() -> dict[str, str]:
    """This process's environment minus every ``STRIPE_*`` and ``PAYDESK_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}


def paydesk_process_environment(database_url: str, webhook_secret: str) -> dict[str, str]:
    """The environment of a Paydesk process on ``database_url`` accepting ``webhook_secret``."""
    return {
        **environment_without_paydesk(),
        "PAYDESK_DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "PAYDESK_LOG_LEVEL": "WARNING",
        "PAYDESK_LOG_FORMAT": "json",
    }


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


class Zygote:
    """Starts Paydesk commands as forks of one warm interpreter (see ``_ZYGOTE``)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: list[Proc] = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            env=env,
            # Never the checkout: a command's relative defaults (sqlite:///var/paydesk.db,
            # the demo's var/) must not land in, or read, what a user's demo keeps there.
            cwd=log_dir,
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
        """Fork ``paydesk *argv`` (plus ``env``), its output in ``<log_dir>/<name>.log``."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        log_path = self.log_dir / f"{name}.log"
        with self._lock:
            extra = orjson.dumps(env or {}).decode()
            self.process.stdin.write("\t".join([str(log_path), extra, *argv]) + "\n")
            self.process.stdin.flush()
            pid = int(self.process.stdout.readline())
            child = Proc(name, pid, log_path)
            self.children.append(child)
        return child

    def close(self) -> None:
        """End the zygote (its children live on until stopped)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def zygote(env: dict[str, str], log_dir: Path) -> Iterator[Zygote]:
    """A ``Zygote`` on ``env`` logging to ``log_dir``; its children still running are stopped."""
    started = Zygote(env, log_dir)
    try:
        yield started
    finally:
        for child in started.children:
            child.stop()
        started.close()


@dataclass
class Proc:
    """A Paydesk process forked by the zygote (its output in ``log_path``)."""

    name: str
    pid: int
    log_path: Path

    def alive(self) -> bool:
        """Whether the process still exists."""
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
        """The last ``chars`` characters of the process's output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def spawn_server(zygote: Zygote, port: int, name: str = "server") -> Proc:
    """``paydesk serve`` on ``port``, not yet waited for (see ``wait_until_healthy``)."""
    return zygote.spawn(name, ["serve", "--port", str(port)])


def wait_until_healthy(proc: Proc, port: int, timeout: float = 120) -> Proc:
    """Return ``proc`` once /healthz on ``port`` answers 200; fail if it exits or is late."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            pytest.fail(f"{proc.name} exited: {proc.tail()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{proc.name} not healthy within {timeout:.0f} s: {proc.tail()}")
        time.sleep(0.02)


def start_server(zygote: Zygote, port: int, name: str = "server", timeout: float = 120) -> Proc:
    """``paydesk serve`` on ``port``; returns once it answers /healthz."""
    return wait_until_healthy(spawn_server(zygote, port, name), port, timeout)


def start_worker(
    zygote: Zygote,
    name: str = "worker",
    *,
    lease: float | None = None,
    batch_size: int = 100,
) -> Proc:
    """``paydesk worker --lease`` ``lease`` seconds (None: the production 5 minutes).

    Its database sessions carry ``name`` as PostgreSQL ``application_name``, so a test
    can see in ``pg_stat_activity`` whether it is inside a transaction.
    """
    argv = ["worker", "--batch-size", str(batch_size), "--idle", "0.1"]
    url = make_url(zygote.env["PAYDESK_DATABASE_URL"])
    named = url.update_query_dict({"application_name": name})
    env = {"PAYDESK_DATABASE_URL": named.render_as_string(hide_password=False)}
    if lease is not None:
        argv += ["--lease", str(lease)]
    return zygote.spawn(name, argv, env=env)
