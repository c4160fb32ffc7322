"""``python -m bench.webhooks``: webhook ingest vs a bare endpoint, latency, worker speed.

1. A throwaway PostgreSQL database (``PAYDESK_BENCH_POSTGRES_URL``, default the local
   server as user postgres), migrated.
2. The bare ASGI endpoint under uvicorn (``--workers`` processes), driven by a
   separate load process (``--concurrency`` connections, ``--events`` deliveries):
   ``bare_eps``.
3. Paydesk in its production configuration (``PAYDESK_ENV=production``, JSON logs,
   PostgreSQL, same uvicorn settings), driven the same way: ``ingest_eps``. Then an
   open-loop run at ``--rate`` events/s for ``--rate-seconds``: ``p50_ms`` / ``p99_ms``.
   Afterwards every acknowledged event must be in the database (durable before 2xx).
4. One worker applies everything stored: ``process_eps``.

Prints the details, then the final line
``webhooks: ingest_eps=… bare_eps=… ratio=… p50_ms=… p99_ms=… process_eps=…``
and writes ``var/bench-webhooks.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from bench.webhooks import cpu
from paydesk.db.engine import create_engine
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import StripeEvent
from paydesk.webhooks.process import Worker

WARM_UP_START = 10_000_000
SECRET = "whsec_" + "b3nch" * 8
FAKE_LIVE_KEY = "sk_live_" + "0" * 24  # production refuses test keys; never sent anywhere
ADMIN_URL = os.environ.get(
    "PAYDESK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"paydesk_bench_{uuid.uuid4().hex[:10]}"
    admin = sa_create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(kind: str, workers: int, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = open(Path("var") / f"bench-webhooks-{kind}.log", "w")  # noqa: SIM115 - closed below
    # Our own interpreter and module, fixed arguments: nothing untrusted reaches the call.
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "bench.webhooks.server", kind, str(port), str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # imports are slow on a busy machine
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start; see {log.name}") from None
                time.sleep(0.1)
        yield f"{base}/api/webhooks/stripe", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def load(
    url: str,
    run: str,
    start: int,
    count: int,
    concurrency: int,
    rate: float | None = None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Run the load process; with ``server_pid``, add CPU µs per delivery by component."""
    args = [
        sys.executable,
        "-m",
        "bench.webhooks.load",
        url,
        SECRET,
        run,
        str(start),
        str(count),
        str(concurrency),
    ]
    if rate:
        args.append(str(rate))
    before = _cpu_snapshot(server_pid)
    result = subprocess.run(args, capture_output=True, text=True, check=True)  # noqa: S603
    after = _cpu_snapshot(server_pid)
    figures = dict(orjson.loads(result.stdout))
    if server_pid is not None:
        figures["cpu_us_per_event"] = {
            "client": round(figures["cpu_seconds"] * 1e6 / count, 1),
            **{name: round((after[name] - before[name]) * 1e6 / count, 1) for name in after},
        }
    return figures


def _cpu_snapshot(server_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of the server's process tree and of PostgreSQL's processes.

    PostgreSQL's figure counts every backend on the machine (the bench's own
    connections are the only busy ones on a quiet machine).
    """
    return {
        "server": cpu.tree_cpu(server_pid) if server_pid else 0.0,
        "postgres": cpu.postgres_cpu(),
    }


def stored_count(engine: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(StripeEvent)) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--events", type=int, default=20_000, help="deliveries per throughput run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="offered load for latency, events/s"
    )
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    args = parser.parse_args()
    Path("var").mkdir(exist_ok=True)
    run = uuid.uuid4().hex[:6]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}

    with throwaway_database() as url:
        env = {
            **base_env,
            "PAYDESK_ENV": "production",
            "STRIPE_SECRET_KEY": FAKE_LIVE_KEY,
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "PAYDESK_DATABASE_URL": url,
        }
        with server("bare", args.workers, base_env) as (bare_url, bare_pid):
            load(bare_url, run, WARM_UP_START, 2000, args.concurrency)  # warm-up
            bare = load(bare_url, run, 0, args.events, args.concurrency, server_pid=bare_pid)
        print(f"bare endpoint:   {bare}")

        engine = create_engine(url)
        with server("paydesk", args.workers, env) as (ingest_url, ingest_pid):
            # Warm-up: other PaymentIntents, stored and processed like the rest.
            load(ingest_url, run, WARM_UP_START, 2000, args.concurrency)
            ingest = load(ingest_url, run, 0, args.events, args.concurrency, server_pid=ingest_pid)
            print(f"paydesk ingest:  {ingest}")
            paced_count = int(args.rate * args.rate_seconds)
            paced = load(ingest_url, run, args.events, paced_count, args.concurrency, args.rate)
            print(f"paydesk at {args.rate:.0f}/s: {paced}")
        acknowledged = 2000 + ingest["statuses"].get("200", 0) + paced["statuses"].get("200", 0)
        durable = stored_count(engine)
        print(f"durability: {acknowledged} acknowledged, {durable} stored")
        if durable < acknowledged:
            raise SystemExit("FAIL: an acknowledged event is missing from the database")

        worker = Worker(engine, batch_size=500)
        started = time.perf_counter()
        processed = worker.drain(timeout=600)
        process_seconds = time.perf_counter() - started
        engine.dispose()

    process_eps = processed / process_seconds
    ratio = ingest["eps"] / bare["eps"]
    result = {
        "ingest_eps": ingest["eps"],
        "bare_eps": bare["eps"],
        "ratio": round(ratio, 3),
        "p50_ms": paced["p50_ms"],
        "p99_ms": paced["p99_ms"],
        "process_eps": round(process_eps, 1),
        "details": {"bare": bare, "ingest": ingest, "paced": paced, "processed": processed},
        "settings": vars(args),
        "cpus": os.cpu_count(),
    }
    Path("var/bench-webhooks.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"webhooks: ingest_eps={ingest['eps']:.0f} bare_eps={bare['eps']:.0f} ratio={ratio:.2f} "
        f"p50_ms={paced['p50_ms']:.1f} p99_ms={paced['p99_ms']:.1f} process_eps={process_eps:.0f}"
    )


if __name__ == "__main__":
    main()
