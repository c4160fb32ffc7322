"""The console's second sign-in step: a reused TOTP code says so; recovery codes are
offered only to an admin who has some, stored hashed, and each works once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from paydesk.auth import accounts, two_factor
from paydesk.db.models import AdminRecoveryCode
from tests.support.admins import SeededAdmin, make_admin
from tests.support.stack import Stack
from tests.web.console.conftest import csrf_of

GENERIC = "Wrong email, password or code."


def password_step(base_url: str, admin: SeededAdmin) -> tuple[httpx.Client, str, str]:
    """A client past the password step: (client, csrf token, the 2FA page)."""
    client = httpx.Client(base_url=base_url, timeout=30)
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": admin.email, "password": admin.password},
    )
    assert response.status_code == 303, response.text
    page = client.get("/admin/2fa")
    assert page.status_code == 200
    return client, token, page.text


def test_reused_totp_code_says_so(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin")
    first, token, page = password_step(base_url, admin)
    assert "Use a recovery code" not in page  # this admin never got recovery codes
    code = admin.code()
    assert first.post("/admin/2fa", data={"csrf_token": token, "code": code}).status_code == 303
    second, token2, _ = password_step(base_url, admin)
    reused = second.post("/admin/2fa", data={"csrf_token": token2, "code": code})
    assert reused.status_code == 401
    assert "already used" in reused.text
    assert GENERIC not in reused.text
    wrong = "000000" if code != "000000" else "111111"
    refused = second.post("/admin/2fa", data={"csrf_token": token2, "code": wrong})
    assert refused.status_code == 401
    assert GENERIC in refused.text
    assert "already used" not in refused.text
    first.close()
    second.close()


def test_recovery_codes_offered_hashed_and_single_use(stack: Stack, base_url: str) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin")
    with stack.sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        codes = two_factor.issue_recovery_codes(session, stack.settings, user)
        session.commit()
        digests = session.scalars(
            select(AdminRecoveryCode.code_digest).where(AdminRecoveryCode.user_id == user.id)
        ).all()
    assert len(digests) == len(codes)
    for code in codes:  # stored as keyed digests, never the code itself
        assert all(code.replace("-", "") not in d and code not in d for d in digests)

    client, token, page = password_step(base_url, admin)
    assert "Use a recovery code" in page
    used = client.post("/admin/2fa", data={"csrf_token": token, "recovery_code": codes[0]})
    assert used.status_code == 303, used.text
    assert client.get("/admin/").status_code == 200
    again, token2, _ = password_step(base_url, admin)
    replay = again.post("/admin/2fa", data={"csrf_token": token2, "recovery_code": codes[0]})
    assert replay.status_code == 401
    assert GENERIC in replay.text
    assert (
        again.post("/admin/2fa", data={"csrf_token": token2, "recovery_code": codes[1]}).status_code
        == 303
    )
    client.close()
    again.close()
