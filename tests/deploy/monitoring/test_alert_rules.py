"""The shipped alert rules: valid, unit-tested with promtool, each documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.monitoring.tools import ALERTS, MONITORING, require_tool

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "OPERATIONS.md"
REQUIRED = {
    "PaydeskHighPaymentFailureRate",
    "PaydeskWebhookProcessingFailures",
    "PaydeskWebhookBacklog",
    "PaydeskWebhookLag",
    "PaydeskStripeApiErrors",
    "PaydeskUnusualRefundActivity",
    "PaydeskSubscriptionCancellationSpike",
    "PaydeskWebhookSignatureFailures",
    "PaydeskDown",
    "PaydeskWorkerStuck",
    "PaydeskWorkerLeaseLost",
    "PaydeskWorkerRoundFailures",
    "PaydeskWorkerReleaseFailures",
    "PaydeskAdminSignInFailures",
    "PaydeskStripeKeyRotationDue",
    "PaydeskWebhookEventsMissing",
    "PaydeskWebhookLivemodeMismatch",
}


def alert_rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    tests = sorted((MONITORING / "tests").glob("*.yml"))
    assert tests
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        check=False,
        cwd=MONITORING / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists_and_is_unit_tested() -> None:
    names = {str(rule["alert"]) for rule in alert_rules()}
    assert names >= REQUIRED, REQUIRED - names
    tested = "\n".join(p.read_text() for p in (MONITORING / "tests").glob("*.yml"))
    untested = {name for name in names if f"alertname: {name}" not in tested}
    assert not untested


def test_every_alert_has_summary_description_and_a_runbook_section() -> None:
    runbook_text = OPERATIONS.read_text()
    headings = {
        re.sub(r"[^a-z0-9]", "", line.lstrip("#").strip().lower())
        for line in runbook_text.splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations.get("summary"), rule["alert"]
        assert annotations.get("description"), rule["alert"]
        anchor = str(annotations["runbook"]).partition("#")[2]
        assert str(annotations["runbook"]).startswith("docs/OPERATIONS.md#")
        assert anchor == str(rule["alert"]).lower()
        assert anchor in headings, f"no '### {rule['alert']}' section in docs/OPERATIONS.md"
