"""The guide's 90-day key rotation: the console's Settings page reminds past 90 days."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from paydesk.db.migrate import upgrade_to_head
from paydesk.web import create_app
from tests.support.admins import make_admin
from tests.support.servers import serve_in_thread
from tests.support.stack import running_stack
from tests.web.console.conftest import sign_in

REMINDER = "older than 90 days: rotate it"


@pytest.mark.parametrize(("age", "reminded"), [(89, False), (90, False), (91, True)])
def test_settings_page_reminds_to_rotate_the_key_past_90_days(
    tmp_path: Path, age: int, reminded: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'rotation.db'}"
    upgrade_to_head(url)
    created = (date.today() - timedelta(days=age)).isoformat()
    with running_stack(url, {"PAYDESK_STRIPE_KEY_CREATED": created}) as stack:
        admin = make_admin(stack.sessions, stack.settings, "admin")
        with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
            client, _ = sign_in(base, admin)
            page = client.get("/admin/settings")
            client.close()
    assert page.status_code == 200
    assert f"{age} days" in page.text
    assert (REMINDER in page.text) is reminded
