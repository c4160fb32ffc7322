"""Run a sandbox: in the foreground (CLI) or in a background thread (tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from paydesk_sandbox.app import create_app
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.state import SandboxState


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """A sandbox serving at ``url`` (``http://127.0.0.1:<port>``)."""

    url: str
    state: SandboxState


def serve(host: str = "127.0.0.1", port: int = 12111, config: SandboxConfig | None = None) -> None:
    """Serve until interrupted (``paydesk sandbox``)."""
    app = create_app(config=config)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, *, startup_timeout: float = 10.0
) -> Iterator[RunningSandbox]:
    """Start an independent sandbox on a free local port in a thread.

    Yields its URL and state; stops it on exit. Instances share nothing, so tests
    can run several side by side.
    """
    state = SandboxState(config)
    app = create_app(state)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.01)
    try:
        yield RunningSandbox(url=f"http://127.0.0.1:{port}", state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
