"""Finding Prometheus' binaries: skip locally without them, fail under CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[3] / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yml"


def require_tool(name: str) -> str:
    """The path of ``name``; skipped without it, a failure under CI (``CI=true``)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (Debian package 'prometheus'; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI requires it")
        pytest.skip(message)
    return path
