"""Benchmark: the Paydesk sandbox vs localstripe, through the official SDK.

Usage: ``.venv/bin/python -m bench.sandbox [--seconds 5] [--workers 4] [--rounds 3]``.

Both servers run as separate processes (one each: uvicorn for ours, aiohttp for
localstripe). ``--workers`` client processes, each with its own
``stripe.StripeClient`` (keep-alive HTTP), loop over a flow for ``--seconds`` and
count completed flows. Flows:

- ``customer_create``: ``POST /v1/customers`` with an email and metadata;
- ``payment_intent_create_confirm``: ``POST /v1/payment_intents`` (pm_card_visa,
  card only) then ``POST /v1/payment_intents/{id}/confirm``; the intent must end
  ``succeeded``.

localstripe 1.15.10 is installed into a throwaway venv under ``var/`` on first use
(never into the project's lock).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import stripe

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "var" / "bench-localstripe-venv"
LOCALSTRIPE = "localstripe==1.15.10"
KEY = "sk_test_" + "bench" + "x" * 19  # a fake test key, built at runtime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_localstripe() -> Path:
    """The throwaway venv's python, creating it on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    probe = subprocess.run([str(python), "-c", "import localstripe"], capture_output=True)  # noqa: S603
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", LOCALSTRIPE], check=True)  # noqa: S603
    return python


@dataclass(frozen=True)
class Server:
    """A running server process."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(command: list[str], url: str) -> Iterator[Server]:
    """Run ``command`` until ``url`` answers; stop it afterwards."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)


def customer_create(client: stripe.StripeClient) -> None:
    client.v1.customers.create(params={"email": "bench@example.com", "metadata": {"n": "1"}})


def payment_intent_create_confirm(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
        }
    )
    confirmed = client.v1.payment_intents.confirm(intent.id)
    if confirmed.status != "succeeded":
        raise RuntimeError(f"unexpected status {confirmed.status}")


FLOWS: dict[str, Callable[[stripe.StripeClient], None]] = {
    "customer_create": customer_create,
    "payment_intent_create_confirm": payment_intent_create_confirm,
}


def _worker(url: str, flow: str, seconds: float, start_at: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    client = _client(url)
    run = FLOWS[flow]
    run(client)  # warm the connection
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    end = start_at + seconds
    while time.time() < end:
        run(client)
        done += 1
    out.put(done)


def measure(target: Server, flow: str, seconds: float, workers: int) -> tuple[float, float]:
    """Completed flows per second with ``workers`` concurrent client processes, and
    the server's CPU milliseconds per flow (client work excluded)."""
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 1.0
    procs = [
        mp.Process(target=_worker, args=(target.url, flow, seconds, start_at, queue))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    while time.time() < start_at:
        time.sleep(0.001)
    cpu_before = target.cpu_seconds()
    total = sum(queue.get(timeout=seconds + 60) for _ in procs)
    cpu_used = target.cpu_seconds() - cpu_before
    for proc in procs:
        proc.join()
    return total / seconds, cpu_used * 1000 / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "var" / "bench-sandbox.json")
    args = parser.parse_args()

    ls_python = ensure_localstripe()
    ours_port, ls_port = _free_port(), _free_port()
    ours_cmd = [sys.executable, "-m", "paydesk", "sandbox", "--port", str(ours_port)]
    ls_cmd = [
        str(ls_python),
        str(Path(__file__).with_name("localstripe_launcher.py")),
        str(ls_port),
    ]
    results: dict[str, dict[str, float]] = {}
    with (
        server(ours_cmd, f"http://127.0.0.1:{ours_port}") as ours,
        server(ls_cmd, f"http://127.0.0.1:{ls_port}") as theirs,
    ):
        for flow in FLOWS:
            # Alternate the two servers round by round and keep medians, so a burst
            # of other load on the machine hits both alike.
            ours_runs, their_runs = [], []
            for _ in range(args.rounds):
                ours_runs.append(measure(ours, flow, args.seconds, args.workers))
                their_runs.append(measure(theirs, flow, args.seconds, args.workers))
            ours_rate = statistics.median(r for r, _ in ours_runs)
            ours_cpu = statistics.median(c for _, c in ours_runs)
            their_rate = statistics.median(r for r, _ in their_runs)
            their_cpu = statistics.median(c for _, c in their_runs)
            results[flow] = {
                "paydesk_sandbox_per_s": ours_rate,
                "localstripe_per_s": their_rate,
                "throughput_ratio": ours_rate / their_rate,
                "paydesk_sandbox_server_cpu_ms": ours_cpu,
                "localstripe_server_cpu_ms": their_cpu,
                "server_cpu_ratio": their_cpu / ours_cpu,
            }
    print(
        f"{'flow':30} {'paydesk/s':>10} {'localstripe/s':>14} {'ratio':>6}"
        f" | server CPU ms/flow: {'paydesk':>8} {'localstripe':>12} {'ratio':>6}"
    )
    for flow, r in results.items():
        print(
            f"{flow:30} {r['paydesk_sandbox_per_s']:>10.0f} {r['localstripe_per_s']:>14.0f}"
            f" {r['throughput_ratio']:>5.2f}x |                    "
            f"{r['paydesk_sandbox_server_cpu_ms']:>8.2f} {r['localstripe_server_cpu_ms']:>12.2f}"
            f" {r['server_cpu_ratio']:>5.2f}x"
        )
    meta = {
        "seconds": args.seconds,
        "workers": args.workers,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
