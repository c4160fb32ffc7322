"""Memory under hostile bursts, measured on a real `paydesk serve` process.

Peak RSS is read from the kernel (``VmHWM``, reset through ``clear_refs`` just
before each burst), so a short spike counts as much as lasting growth and the
figure does not depend on when a sampler happens to look.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.databases import migrated_throwaway_postgres
from tests.support.servers import environment_without_paydesk, free_port
from tests.support.waiting import poll

MB = 1024 * 1024
GROWTH_LIMIT = 100 * MB
JWT_SECRET = "hostile-memory-jwt-secret-" + "0123456789abcdef"
ADMIN = "burst@paydesk.test"


@dataclass
class Served:
    base: str
    port: int
    pid: int
    password: str

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} for {self.pid}")

    def rss(self) -> int:
        return self._status("VmRSS")

    def reset_peak(self) -> int:
        """Reset the kernel's peak-RSS mark to the current RSS and return that."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self._status("VmHWM")

    def peak(self) -> int:
        return self._status("VmHWM")


def _paydesk(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "paydesk", *argv],
        env={**environment_without_paydesk(), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to read a process's peak RSS")
    tmp = tmp_path_factory.mktemp("memory")
    # PostgreSQL, as staging and production run (SQLite serialises the audited
    # failures of a burst behind its one write lock).
    with migrated_throwaway_postgres() as url:
        yield from _serve(tmp, url)


def _serve(tmp: Path, url: str) -> Iterator[Served]:
    env = {
        "PAYDESK_DATABASE_URL": url,
        "PAYDESK_JWT_SECRET": JWT_SECRET,
        "PAYDESK_LOG_LEVEL": "WARNING",
    }
    created = _paydesk(env, "admin", "create", "--email", ADMIN, "--role", "viewer")
    password = created.split("Password (shown once): ")[1].split()[0]
    port = free_port()
    log = tmp / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "paydesk", "serve", "--port", str(port)],
        env={**environment_without_paydesk(), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        poll(healthy, timeout=180, what="paydesk serve")
        yield Served(base, port, proc.pid, password)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _login_form(client: httpx.Client) -> str:
    page = client.get("/admin/login")
    return page.text.split('name="csrf_token" value="')[1].split('"')[0]


def test_32_parallel_wrong_passwords_stay_within_the_memory_budget(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=120) as client:
        token = _login_form(client)
        cookies = dict(client.cookies)
        # Warm up: the first hash maps argon2's memory once; measure what a burst adds.
        for _ in range(2):
            client.post(
                "/admin/login", data={"csrf_token": token, "email": ADMIN, "password": "w" * 12}
            )
    time.sleep(0.5)
    baseline = served.reset_peak()

    def attempt(i: int) -> int:
        with httpx.Client(base_url=served.base, timeout=120, cookies=cookies) as one:
            data = {"csrf_token": token, "email": ADMIN, "password": f"wrong-password-{i:04d}"}
            return one.post("/admin/login", data=data).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(attempt, range(32)))
    growth = served.peak() - baseline
    print(f"32 parallel wrong passwords: peak RSS growth {growth / MB:.1f} MB, {statuses}")
    assert set(statuses) <= {401, 429}, statuses
    assert growth < GROWTH_LIMIT, f"peak RSS grew {growth / MB:.0f} MB"
    # The burst's address now backs off for this account (429 with the wait), while the
    # owner, from their own address (another loopback one), still gets in.
    for source, expected in (("127.0.0.1", 429), ("127.0.0.2", 303)):
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=served.base, timeout=120, transport=transport) as client:
            token = _login_form(client)
            answer = client.post(
                "/admin/login",
                data={"csrf_token": token, "email": ADMIN, "password": served.password},
            )
        assert answer.status_code == expected, (source, answer.text[:300])


MUTATIONS = [
    ("POST", "/api/admin/customers"),
    ("POST", "/api/billing/subscription"),
]


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
def test_anonymous_bodies_are_refused_before_they_are_parsed(
    served: Served, method: str, path: str
) -> None:
    # Malformed JSON without credentials: 401 (authenticated first), never 400.
    with httpx.Client(base_url=served.base, timeout=60) as client:
        response = client.request(
            method, path, content=b"{not json" * 100, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in {"token_required", "missing_token"}


def _raw_request(port: int, head: bytes, body_part: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body_part)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.parametrize(("method", "path"), MUTATIONS)
def test_a_100_mb_body_is_refused_from_its_headers(served: Served, method: str, path: str) -> None:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * MB}\r\n\r\n"
    ).encode()
    # Only 1 kB of the announced 100 MB is ever sent: the answer comes without it.
    answer = _raw_request(served.port, head, b"[" + b"1," * 500)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]


def test_20_anonymous_1_mb_bodies_stay_within_the_memory_budget(served: Served) -> None:
    body = b"[" + b"1," * (MB // 2 - 1) + b"1]"
    assert len(body) >= MB
    time.sleep(0.5)
    baseline = served.reset_peak()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    def send(i: int) -> int:
        path = MUTATIONS[i % 2][1]
        # Half announce their length, half stream chunked (no Content-Length).
        content: bytes | Iterator[bytes] = body if i % 4 < 2 else chunks()
        with httpx.Client(base_url=served.base, timeout=120) as client:
            try:
                response = client.post(
                    path, content=content, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError:
                return 0  # the server answered and closed before taking the whole body
            return response.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(send, range(20)))
    growth = served.peak() - baseline
    print(f"20 anonymous 1 MB bodies: peak RSS growth {growth / MB:.1f} MB, {statuses}")
    assert set(statuses) <= {0, 401, 413}, statuses
    assert growth < GROWTH_LIMIT, f"peak RSS grew {growth / MB:.0f} MB"


def test_a_trickled_body_is_cut_off(served: Served) -> None:
    # 1 byte a second of an announced 200: answered 408 after the body deadline,
    # not held for minutes.
    from paydesk.web.limits import BODY_READ_SECONDS

    head = (
        b"POST /admin/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=60) as sock:
        sock.sendall(head)
        sock.settimeout(1.0)
        answer = b""
        while time.monotonic() - started < BODY_READ_SECONDS + 30:
            with contextlib.suppress(OSError):
                sock.sendall(b"a")
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer:
                break
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert elapsed < BODY_READ_SECONDS + 10, elapsed


@pytest.mark.parametrize(
    ("origin", "expected"),
    [("https://evil.example", 403), ("null", 403), (None, 401), ("same", 401)],
    ids=["other-site", "null", "no-origin", "same-origin"],
)
def test_console_forms_posted_from_another_origin_are_refused(
    served: Served, origin: str | None, expected: int
) -> None:
    with httpx.Client(base_url=served.base, timeout=60) as client:
        token = _login_form(client)
        headers = {}
        if origin is not None:
            headers["Origin"] = served.base if origin == "same" else origin
        # An email of its own: the wrong passwords of the other tests (same address)
        # put ADMIN's sign-ins from here in back-off, which answers 429 before this.
        response = client.post(
            "/admin/login",
            data={
                "csrf_token": token,
                "email": f"origin-{origin}@example.com",
                "password": "w" * 12,
            },
            headers=headers,
        )
    assert response.status_code == expected, response.text[:300]
