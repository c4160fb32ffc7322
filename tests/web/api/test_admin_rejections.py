"""Refused webhook deliveries, visible: the Admin API's /webhooks/rejections and the
console's Settings and health page, role-checked, with the real source address."""

from __future__ import annotations

import httpx
import pytest

from paydesk.web import create_app
from tests.support.admins import admin_token, make_admin
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack, running_stack
from tests.web.console.conftest import sign_in

pytestmark = pytest.mark.postgres

FORGER = "203.0.113.77"
OTHER = "198.51.100.8"
PATH = "/api/admin/webhooks/rejections"


def _deliver(client: httpx.Client, address: str, signature: str = "t=1,v1=00") -> None:
    response = client.post(
        "/api/webhooks/stripe",
        content=b'{"id": "evt_forged", "type": "charge.succeeded"}',
        # The test server is uvicorn with its defaults: X-Forwarded-For from 127.0.0.1
        # is believed, standing in for the ingress.
        headers={"Stripe-Signature": signature, "X-Forwarded-For": address},
    )
    assert response.status_code == 400, response.text


@pytest.fixture
def served(migrated_url: str) -> tuple[Stack, str]:  # type: ignore[misc]
    secret = "whsec_" + "rejections0test" * 2
    with (
        running_stack(migrated_url, {"STRIPE_WEBHOOK_SECRET": secret}) as stack,
        serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base,
    ):
        yield stack, base


def test_refused_deliveries_per_hour_reason_and_address(served: tuple[Stack, str]) -> None:
    stack, base = served
    with httpx.Client(base_url=base, timeout=30) as anonymous:
        for _ in range(3):
            _deliver(anonymous, FORGER)
        _deliver(anonymous, OTHER, signature="")
        assert anonymous.get(PATH).status_code == 401
    viewer = admin_token(stack.sessions, stack.settings, "viewer")
    support = admin_token(stack.sessions, stack.settings, "support")
    finance = admin_token(stack.sessions, stack.settings, "finance")
    for token in (viewer, support):
        refused = httpx.get(f"{base}{PATH}", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"
    auth = {"Authorization": f"Bearer {finance}"}
    rows = httpx.get(f"{base}{PATH}", headers=auth).json()
    counted = {(r["reason"], r["source_address"]): r["count"] for r in rows}
    assert counted == {("signature_invalid", FORGER): 3, ("signature_missing", OTHER): 1}
    assert all(r["hour"].endswith(":00:00Z") for r in rows)
    for bad in ("0", "169", "x", "1e9"):
        poisoned = httpx.get(f"{base}{PATH}", params={"hours": bad}, headers=auth)
        assert poisoned.status_code == 422, bad
        assert poisoned.json()["error"]["field"] == "hours"
    assert httpx.get(f"{base}{PATH}", params={"hours": 168}, headers=auth).status_code == 200

    # The console shows the same on Settings and health (settings.read: finance, admin).
    finance_admin = make_admin(stack.sessions, stack.settings, "finance", email="f2@x.test")
    console, _ = sign_in(base, finance_admin)
    page = console.get("/admin/settings")
    assert page.status_code == 200
    section = page.text.split('id="refused-deliveries"')[1]
    assert f"<td>signature_invalid</td><td>{FORGER}</td><td>3</td>" in section
    assert f"<td>signature_missing</td><td>{OTHER}</td><td>1</td>" in section
    console.close()
    support_admin = make_admin(stack.sessions, stack.settings, "support", email="s2@x.test")
    console, _ = sign_in(base, support_admin)
    assert console.get("/admin/settings").status_code == 403
    console.close()


def test_the_signature_alert_links_to_the_console_section() -> None:
    from pathlib import Path

    import yaml

    rules = yaml.safe_load(
        (Path(__file__).resolve().parents[3] / "deploy/monitoring/alerts.yml").read_text()
    )
    alert = next(
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "PaydeskWebhookSignatureFailures"
    )
    template = Path(__file__).resolve().parents[3] / (
        "src/paydesk/web/console/templates/settings.html"
    )
    path, _, anchor = alert["annotations"]["console"].partition("#")
    assert path == "/admin/settings"
    assert f'id="{anchor}"' in template.read_text()
