"""`paydesk serve` cuts off clients whose request headers trickle in (issue 14).

uvicorn alone has no header read timeout: every byte cancels its keep-alive timer,
so headers sent 1 byte every 5 s held a connection for as long as the client liked.
Against the real command, as a process, over a raw socket.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paydesk.db.migrate import upgrade_to_head
from paydesk.web.http_protocol import HEADER_READ_SECONDS
from tests.support.servers import environment_without_paydesk, free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade_to_head(url)
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "paydesk", "serve", "--port", str(port)],
        env={**environment_without_paydesk(), "PAYDESK_DATABASE_URL": url},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.settimeout(60)
    return sock


def _response(sock: socket.socket) -> bytes:
    """One whole response (headers and its Content-Length of body) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def test_headers_trickled_one_byte_every_5_s_are_cut_off(served: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    started = time.monotonic()
    sent = 0
    answer = b""
    with _connect(served) as sock:
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                sock.settimeout(5)
                try:
                    answer = sock.recv(4096)
                except TimeoutError:
                    continue
                break
        except (BrokenPipeError, ConnectionResetError):
            pass
    held = time.monotonic() - started
    # Without the deadline all 125 bytes go out (over 10 minutes) and /healthz answers.
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in answer.lower()
    assert sent < len(request)
    assert HEADER_READ_SECONDS <= held < HEADER_READ_SECONDS + 10, held


def test_prompt_and_kept_alive_requests_are_unaffected(served: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with _connect(served) as sock:
        # Headers in two parts, 3 s apart (well within the deadline), then a second
        # request on the same connection after a pause of its own.
        sock.sendall(request[:10])
        time.sleep(3)
        sock.sendall(request[10:])
        first = _response(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first
        time.sleep(3)
        sock.sendall(request)
        second = _response(sock)
        assert second.startswith(b"HTTP/1.1 200 "), second
    # A request whose handler takes a while is not cut off by the header deadline.
    with httpx.Client(base_url=f"http://127.0.0.1:{served}", timeout=60) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(HEADER_READ_SECONDS / 2)
        assert client.get("/healthz").status_code == 200
