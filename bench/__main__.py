"""``python -m bench``: run every benchmark in turn (each prints its own summary)."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("bench.sandbox", "bench.webhooks", "bench.scale")


def main() -> int:
    """Run each benchmark module as its own process; fail if any fails."""
    failed = 0
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        # Fixed module names, our own interpreter: nothing untrusted reaches the call.
        result = subprocess.run([sys.executable, "-m", module], check=False)  # noqa: S603
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
