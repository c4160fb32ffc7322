"""``paydesk-sandbox`` (or ``python -m paydesk_sandbox``): serve the offline Stripe stand-in.

``paydesk sandbox`` in a development install calls :func:`run` with the same options.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.faults import FaultConfig, parse_spec

FAULTS_HELP = (
    "Fail a share of /v1 requests, e.g. "
    "'share=0.3;kinds=500,429,timeout,drop_after_apply;seed=7;path=/v1/refunds;"
    "hold=35;retry_after=1' (a bare number is the share). Off by default "
    "(env PAYDESK_SANDBOX_FAULTS); change it at run time with PUT /_sandbox/faults."
)


def run(host: str, port: int, snapshot: Path | None, faults: FaultConfig) -> None:
    """Print where the sandbox listens, then serve until interrupted."""
    from paydesk_sandbox.server import serve  # uvicorn only when serving

    print(f"Stripe sandbox on http://{host}:{port}/v1 (test keys only; Ctrl-C stops)", flush=True)
    if faults.share > 0:
        shown = ", ".join(faults.kinds)
        print(f"Fault mode on: {faults.share:.0%} of /v1 requests fail ({shown})", flush=True)
    serve(host=host, port=port, config=SandboxConfig(snapshot_path=snapshot, faults=faults))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="paydesk-sandbox",
        description="Serve the offline Stripe API sandbox at http://HOST:PORT/v1/ "
        "(the official Stripe SDKs talk to it unchanged; test keys only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=12111, help="port to listen on")
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        help="load state from this file at start and save it there at exit",
    )
    parser.add_argument(
        "--faults", default=os.environ.get("PAYDESK_SANDBOX_FAULTS", ""), help=FAULTS_HELP
    )
    args = parser.parse_args(argv)
    try:
        faults = parse_spec(args.faults)
    except ValueError as exc:
        parser.error(f"--faults: {exc}")
    run(args.host, args.port, args.snapshot, faults)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through __main__.py
    sys.exit(main())
