"""The load process: signed webhook deliveries over raw keep-alive HTTP/1.1 connections.

``python -m bench.webhooks.load URL SECRET RUN START COUNT CONCURRENCY [RATE]`` sends
events ``START`` … ``START+COUNT-1`` of run ``RUN`` (``bench.webhooks.events``),
each signed like Stripe signs them, over ``CONCURRENCY`` connections; with ``RATE``
(events/s) it paces the sends (open loop) instead of sending as fast as answered.
Prints one JSON line: counts, elapsed seconds, events/s and latency percentiles.
The client is deliberately thin (asyncio streams on uvloop, pre-built requests) so
that it costs the machine far less than the servers it measures.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.webhooks.events import event


def build_requests(url: str, secret: str, run: str, start: int, count: int) -> list[bytes]:
    """Complete HTTP requests, signed now (valid for the 300 s tolerance)."""
    parts = urlsplit(url)
    timestamp = int(time.time())
    requests = []
    for index in range(start, start + count):
        body = orjson.dumps(event(index, run=run))
        mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        head = (
            f"POST {parts.path} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
            f"Stripe-Signature: t={timestamp},v1={mac.hexdigest()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(
    url: str, requests: list[bytes], concurrency: int, rate: float | None
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    queue = list(reversed(range(len(requests))))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    cpu_started = time.process_time()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                index = queue.pop()
                if rate:
                    due = started + index / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent = time.perf_counter()
                writer.write(requests[index])
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - sent)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "sent": len(requests),
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": round(elapsed, 3),
        "eps": round(len(requests) / elapsed, 1),
        "p50_ms": round(percentile(0.50), 2),
        "p99_ms": round(percentile(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        # The client's own CPU while sending (building the signed requests excluded).
        "cpu_seconds": round(cpu_seconds, 4),
    }


def main() -> None:
    url, secret, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
    start, count, concurrency = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    rate = float(sys.argv[7]) if len(sys.argv) > 7 else None
    requests = build_requests(url, secret, run_id, start, count)
    result = uvloop.run(run(url, requests, concurrency, rate))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
