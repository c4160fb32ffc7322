"""Real databases for tests: a fresh SQLite file, a throwaway PostgreSQL database, or a
private PostgreSQL cluster that a test may stop and start.

PostgreSQL is reached at ``PAYDESK_TEST_POSTGRES_URL`` (default: the local server,
user ``postgres``, trust auth). Under CI (``CI=true``) an unreachable server fails
the run; elsewhere the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from paydesk.db.migrate import upgrade_to_head
from tests.support.servers import free_port

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """URL of a PostgreSQL database we may create other databases from."""
    return os.environ.get("PAYDESK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def require_postgres() -> None:
    """Skip (or, under CI, fail) when PostgreSQL cannot be reached."""
    engine = create_engine(postgres_admin_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        message = f"PostgreSQL not reachable at {postgres_admin_url()}: {type(exc).__name__}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI requires it)")
        pytest.skip(message)
    finally:
        engine.dispose()


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    require_postgres()
    name = f"paydesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def throwaway_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of ``kind`` (``sqlite`` or ``postgresql``), as a URL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'paydesk.db'}"
        return
    with throwaway_postgres() as url:
        yield url


_alembic = threading.Lock()


def migrate(url: str) -> None:
    """Upgrade ``url`` to head. Alembic's context is process-global: one at a time."""
    with _alembic:
        upgrade_to_head(url)


@contextmanager
def migrated_throwaway_postgres() -> Iterator[str]:
    """A throwaway database on the shared PostgreSQL, migrated to head."""
    with throwaway_postgres() as url:
        migrate(url)
        yield url


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
    """A PostgreSQL cluster of our own on a free port, which a test may stop and start.

    The machine's shared server is never touched. Needs root (to run the server as the
    ``postgres`` user); fsync stays on, so an immediate stop is a crash the committed
    data must survive.
    """

    def __init__(self) -> None:
        if os.geteuid() != 0:
            pytest.fail(
                "a private PostgreSQL cluster runs as user postgres and needs root "
                "(a database-fault check would otherwise have to stop the shared server)"
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
        """URL of the cluster's ``postgres`` database."""
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
        """``pg_ctl start`` on 127.0.0.1 and the cluster's port; returns once it accepts."""
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        self._as_postgres([*ctl, "-o", options, "-w", "-t", "120", "start"])

    def stop_immediately(self) -> None:
        """``pg_ctl -m immediate stop``: every backend dies, nothing is flushed politely."""
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        )

    def remove(self) -> None:
        """Stop the cluster if it runs and delete its files."""
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
    """A started ``PrivateCluster``, removed afterwards."""
    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
