"""No key, webhook secret, password or card number escapes into logs or responses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import free_port
from tests.test_settings import PK_TEST, SK_LIVE, SK_TEST, WHSEC

CARD = "4000002500003155"
DB_PASSWORD = "Pg-Hunter2-Secret"


def test_running_service_never_shows_configured_or_submitted_secrets(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYDESK_"))}
    env.update(
        {
            "STRIPE_SECRET_KEY": SK_TEST,
            "STRIPE_PUBLISHABLE_KEY": PK_TEST,
            "STRIPE_WEBHOOK_SECRET": WHSEC,
            "PAYDESK_LOG_LEVEL": "DEBUG",
            "PAYDESK_LOG_FORMAT": "json",
            # The password sits in the URL; the server is unreachable on purpose so
            # error paths (which love to print URLs) are exercised too.
            "PAYDESK_DATABASE_URL": f"postgresql://u:{DB_PASSWORD}@127.0.0.1:{free_port()}/x",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "paydesk", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    responses: list[httpx.Response] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # generous: a loaded CI machine is slow
        while True:
            try:
                responses.append(httpx.get(f"{base}/healthz"))
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        responses += [
            httpx.get(f"{base}/readyz", timeout=20),
            httpx.get(f"{base}/v1/{SK_LIVE}?card={CARD}&whsec={WHSEC}"),
            httpx.post(
                f"{base}/api/{CARD}",
                headers={"authorization": f"Bearer {SK_TEST}", "x-request-id": SK_LIVE},
                content=f'{{"number": "{CARD}", "key": "{SK_TEST}"}}',
            ),
        ]
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)

    assert responses[0].status_code == 200
    assert responses[1].status_code == 503
    assert "request" in output, "the access log should have been written"
    everything = output + "".join(r.text + str(r.headers) for r in responses)
    for secret in (SK_TEST, SK_LIVE, PK_TEST, WHSEC, CARD, DB_PASSWORD):
        assert secret not in everything, f"a secret of kind {secret[:3]}… leaked"
