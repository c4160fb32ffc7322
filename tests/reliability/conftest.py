"""The reliability suite: faults, hostile input, access, secrets and load (docs/RELIABILITY.md).

Two scales. ``make test`` runs the short one (small counts, seconds per area);
``make reliability`` sets ``PAYDESK_RELIABILITY=full`` for the figures published in
docs/RELIABILITY.md. Tests ask ``scale.pick(short, full)`` for their sizes and put
what they measured in the ``figures`` fixture; at the end the run prints one line
per area (the test module) and ``reliability: N checks, N passed, N failed``.
A skipped check counts as failed: nothing here may be silently left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

T = TypeVar("T")

# Areas in the order docs/RELIABILITY.md presents them; the module test_<area>.py holds each.
AREAS = [
    "process_faults",
    "database_faults",
    "stripe_faults",
    "delivery_chaos",
    "hostile_input",
    "access",
    "load",
    "secrets",  # last: it inspects what everything before it left behind
]
HERE = Path(__file__).parent
# The suite's own output directory: never the demo's var/, whose database and keys a
# user's `make demo` left there on purpose (the secrets scan reads this directory).
OUTPUT_DIR = HERE.parents[1] / "test-output"
REPORT_PATH = OUTPUT_DIR / "reliability.json"


@dataclass(frozen=True)
class Scale:
    """Which size of the suite runs: ``short`` inside ``make test``, ``full`` for figures."""

    full: bool

    @property
    def name(self) -> str:
        return "full" if self.full else "short"

    def pick(self, short: T, full: T) -> T:
        """``short`` in the short run, ``full`` in ``make reliability``."""
        return full if self.full else short


def current_scale() -> Scale:
    return Scale(full=os.environ.get("PAYDESK_RELIABILITY", "short").lower() == "full")


@pytest.fixture(scope="session")
def scale() -> Scale:
    """The suite's scale (``PAYDESK_RELIABILITY=full`` for ``make reliability``)."""
    return current_scale()


_outcomes: dict[str, str] = {}  # nodeid -> passed | failed | skipped
_figures: dict[str, dict[str, Any]] = {}  # nodeid -> what the check measured


def area_of(nodeid: str) -> str | None:
    """``tests/reliability/test_access.py::test_x`` → ``access`` (None outside the suite)."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith("tests/reliability/test_"):
        return None
    return path.removeprefix("tests/reliability/test_").removesuffix(".py")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict the check fills with its figures (events, faults, losses, …) for the report."""
    measured: dict[str, Any] = {}
    yield measured
    _figures[request.node.nodeid] = measured


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the secrets area after everything else: it scans what the rest left behind."""

    def last_if_secrets(item: pytest.Item) -> int:
        return 1 if area_of(item.nodeid) == "secrets" else 0

    items.sort(key=last_if_secrets)  # stable: the rest keep their order


# Captured output (stdout, stderr, log) and failure reports of every test of the session,
# for the secrets area to scan. A plugin object, so it sees tests outside this directory too.
CAPTURED: list[tuple[str, str]] = []  # (nodeid and section name, text)


class _CapturedOutput:
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, content in report.sections:
            CAPTURED.append((f"{report.nodeid} [{name}]", content))
        if report.failed:
            CAPTURED.append((f"{report.nodeid} [failure]", report.longreprtext))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_CapturedOutput(), "paydesk-captured-output")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if area_of(report.nodeid) is None:
        return
    if report.when == "call" or report.outcome != "passed":
        previous = _outcomes.get(report.nodeid)
        if previous in (None, "passed"):  # a teardown error still fails a passed call
            _outcomes[report.nodeid] = report.outcome


def _summary_lines() -> list[str]:
    lines = []
    known = AREAS + sorted({a for n in _outcomes if (a := area_of(n)) and a not in AREAS})
    total = passed = 0
    for area in known:
        ids = [nodeid for nodeid in _outcomes if area_of(nodeid) == area]
        if not ids:
            continue
        ok = sum(1 for nodeid in ids if _outcomes[nodeid] == "passed")
        total += len(ids)
        passed += ok
        measured: dict[str, Any] = {}
        for nodeid in ids:
            for key, value in _figures.get(nodeid, {}).items():
                measured[key] = measured.get(key, 0) + value if _summable(value) else value
        shown = " ".join(f"{key}={value}" for key, value in measured.items())
        label = area.replace("_", " ")
        lines.append(f"{label}: {len(ids)} checks, {ok} passed, {len(ids) - ok} failed  {shown}")
    lines.append(f"reliability: {total} checks, {passed} passed, {total - passed} failed")
    return lines


def _summable(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _outcomes:
        return
    scale_name = current_scale().name
    terminalreporter.section(f"reliability ({scale_name})")
    for line in _summary_lines():
        terminalreporter.write_line(line.rstrip())
    REPORT_PATH.parent.mkdir(exist_ok=True)
    REPORT_PATH.write_bytes(
        orjson.dumps(
            {"scale": scale_name, "outcomes": _outcomes, "figures": _figures},
            option=orjson.OPT_INDENT_2,
        )
    )
