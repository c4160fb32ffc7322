"""``python -m bench.scale [--subs N]``: metrics, dashboard and list pages at N subscriptions.

1. A throwaway PostgreSQL database, migrated, filled by PostgreSQL itself
   (``bench/scale/generate.py``): N subscriptions' worth of mirror, webhook inbox and
   rollups over 24 months; then VACUUM ANALYZE.
2. One Paydesk API process (uvicorn, one worker: an API pod) on it, the Prometheus
   collector's in-process cache off (every scrape reads the database).
3. Over HTTP, one request at a time after a warm-up (the database's cache is warm):
   ``/api/admin/metrics`` (30 days), ``/api/admin/metrics/mrr?months=12``, the console
   dashboard ``/admin/``, a filtered payments list, a payments search by customer
   email, and ``/metrics``. p50/p95 per request, the server's peak RSS (VmHWM).
4. ``--verify``: the figures the rollups give equal the from-scratch definitions
   (``paydesk.analytics.reference``, which reads whole tables: slow at large N).

The database is dropped at the end. The last line is the summary:
``scale: subs=N metrics_p95_ms=… mrr_p95_ms=… dashboard_p95_ms=… list_p95_ms=…
scrape_ms=… peak_rss_mb=…`` (``list`` covers the filtered list and the email search;
``scrape_ms`` is the p95 of ``/metrics``).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text

from bench.scale.generate import generate
from bench.webhooks.__main__ import free_port, throwaway_database
from paydesk.db.engine import create_engine, session_factory

FAKE_TEST_KEY = "sk_test_" + "0" * 24  # development mode; Stripe is never called


def percentile(samples: list[float], p: float) -> float:
    """The ``p`` quantile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def sign_in(base: str, email: str, password: str) -> httpx.Client:
    """A console session (a viewer signs in with a password only)."""
    client = httpx.Client(base_url=base, timeout=600)
    page = client.get("/admin/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the login page"
    response = client.post(
        "/admin/login",
        data={"csrf_token": found.group(1), "email": email, "password": password},
    )
    assert response.status_code == 303, response.text
    return client


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--subs", type=int, default=100_000, help="subscriptions (N)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--verify", action="store_true", help="check against the definitions")
    args = parser.parse_args()
    n = args.subs
    now = int(time.time())
    Path("var").mkdir(exist_ok=True)
    print(f"load before: {os.getloadavg()}", flush=True)

    with throwaway_database() as url:
        started = time.perf_counter()

        def report(step: str, seconds: float) -> None:
            print(f"  {step}: {seconds:.1f} s", flush=True)

        engine = sa_create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            generate(connection, n, now, report)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
            sizes = connection.execute(
                text(
                    "SELECT relname, n_live_tup FROM pg_stat_user_tables "
                    "WHERE n_live_tup > 0 ORDER BY n_live_tup DESC"
                )
            ).all()
        engine.dispose()
        print(f"generated in {time.perf_counter() - started:.0f} s: {dict(sizes)}", flush=True)

        from paydesk.auth import accounts, tokens, two_factor
        from paydesk.settings import load_settings

        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))
        }
        env = {
            **base_env,
            "PAYDESK_ENV": "development",
            "STRIPE_SECRET_KEY": FAKE_TEST_KEY,
            "PAYDESK_DATABASE_URL": url,
            "PAYDESK_LOG_LEVEL": "WARNING",
            # A throwaway key for this run's throwaway admins (tokens, console sessions).
            "PAYDESK_SECRET_KEY": secrets.token_urlsafe(48),
        }
        settings = load_settings(env)
        paydesk_engine = create_engine(url)
        sessions = session_factory(paydesk_engine)
        password = "bench " * 4
        with sessions() as session:
            accounts.create_admin(
                session, settings, email="viewer@bench.test", role="viewer", password=password,
                actor="bench",
            )  # fmt: skip
            reader, _ = accounts.create_admin(
                session, settings, email="reader@bench.test", role="admin", password=password,
                actor="bench",
            )  # fmt: skip
            two_factor.start_enrolment(settings, reader)
            reader.totp_enabled = True  # an admin's token needs two-factor enrolment
            _, token = tokens.create(
                session, settings, reader, name="bench", role="viewer", days=1, actor="bench"
            )
            session.commit()

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(Path("var") / "bench-scale-server.log", "w")  # noqa: SIM115 - closed below
        # Our own interpreter and module, fixed arguments: nothing untrusted reaches the call.
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "bench.scale.server", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        message = "server did not start; see var/bench-scale-server.log"
                        raise RuntimeError(message) from None
                    time.sleep(0.2)
            api = httpx.Client(
                base_url=base, timeout=600, headers={"Authorization": f"Bearer {token}"}
            )
            console = sign_in(base, "viewer@bench.test", password)
            pages = {
                "metrics": (api, "/api/admin/metrics?currency=usd"),
                "mrr": (api, "/api/admin/metrics/mrr?months=12&currency=usd"),
                "dashboard": (console, "/admin/"),
                "list": (api, "/api/admin/payments?status=requires_payment_method&currency=eur"),
                "search": (api, f"/api/admin/payments?q=user{n // 2}%40example.com"),
                "scrape": (api, "/metrics"),
            }
            results: dict[str, list[float]] = {}
            for name, (client, path) in pages.items():
                first = time.perf_counter()
                response = client.get(path)
                cold_ms = (time.perf_counter() - first) * 1000
                assert response.status_code == 200, (path, response.status_code, response.text)
                for _ in range(2):
                    client.get(path)  # warm-up
                samples = []
                for _ in range(args.requests):
                    begun = time.perf_counter()
                    response = client.get(path)
                    samples.append((time.perf_counter() - begun) * 1000)
                    assert response.status_code == 200
                results[name] = samples
                print(
                    f"  {name:9} {path}: first {cold_ms:.0f} ms, "
                    f"p50 {statistics.median(samples):.1f} ms, "
                    f"p95 {percentile(samples, 0.95):.1f} ms",
                    flush=True,
                )
            rss = peak_rss_mb(server.pid)
            api.close()
            console.close()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()

        if args.verify:
            from paydesk.analytics import business, reference

            end = now + 1
            with sessions() as session:
                for start in (end - 30 * 86_400, end - 365 * 86_400):
                    assert business.overview(session, start, end, "usd") == reference.overview(
                        session, start, end, "usd"
                    ), "rollup figures differ from the definitions"
                when = datetime.fromtimestamp(now, UTC)
                assert business.mrr_series(session, when, 12, "usd") == reference.mrr_series(
                    session, when, 12, "usd"
                )
            print("verify: rollup figures equal the from-scratch definitions", flush=True)
        paydesk_engine.dispose()

    def p95(*names: str) -> str:
        return f"{percentile([s for name in names for s in results[name]], 0.95):.1f}"

    print(f"load after: {os.getloadavg()}", flush=True)
    print(
        f"scale: subs={n} metrics_p95_ms={p95('metrics')} mrr_p95_ms={p95('mrr')} "
        f"dashboard_p95_ms={p95('dashboard')} list_p95_ms={p95('list', 'search')} "
        f"scrape_ms={p95('scrape')} peak_rss_mb={rss:.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
