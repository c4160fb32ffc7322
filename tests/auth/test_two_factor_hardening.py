"""Two-factor under attack: one TOTP step signs in once even when sent concurrently, and
a stale enrolment session cannot replace an enrolled account's seed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy.orm import Session, sessionmaker

from paydesk.auth import accounts, two_factor
from paydesk.db.engine import create_engine, session_factory
from paydesk.errors import AuthenticationRequired, Conflict
from paydesk.settings import load_settings
from paydesk.web import create_app
from tests.support.admins import PASSWORD, make_admin
from tests.support.databases import migrated_throwaway_postgres
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack

CSRF_MARK = 'name="csrf_token" value="'
SEED_MARK = '<code id="totp-key">'


def test_concurrent_requests_with_the_same_code_accept_it_once() -> None:
    # PostgreSQL: SQLite runs one write transaction at a time (BEGIN IMMEDIATE), so
    # there the requests cannot even read the row side by side.
    with migrated_throwaway_postgres() as url:
        _same_code_in_parallel(url)


def _same_code_in_parallel(url: str) -> None:
    settings = load_settings({"PAYDESK_DATABASE_URL": url})
    engine = create_engine(url)
    sessions: sessionmaker[Session] = session_factory(engine)
    try:
        admin = make_admin(sessions, settings, "admin")
        code = admin.code()
        attempts = 4
        ready = threading.Barrier(attempts)

        def attempt(_: int) -> bool:
            with sessions() as session:
                user = accounts.get_admin(session, admin.user_id)
                assert user.totp_last_step == 0  # each has read the row before any claim
                ready.wait(timeout=30)
                accepted = two_factor.verify_totp(settings, user, code)
                session.commit()
                return accepted

        for _round in range(2):
            with sessions() as session:
                accounts.get_admin(session, admin.user_id).totp_last_step = 0
                session.commit()
            with ThreadPoolExecutor(attempts) as pool:
                results = list(pool.map(attempt, range(attempts)))
            assert results.count(True) == 1, results
    finally:
        engine.dispose()


def test_enrolment_is_refused_once_the_account_has_a_confirmed_seed(stack: Stack) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin")
    with stack.sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        with pytest.raises(Conflict) as refused:
            two_factor.start_enrolment(stack.settings, user)
        assert refused.value.code == "two_factor_already_enrolled"
        assert two_factor.totp_seed(stack.settings, user) == admin.seed


def _signed_in_to_enrol(base: str, email: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60)
    token = client.get("/admin/login").text.split(CSRF_MARK)[1].split('"')[0]
    response = client.post(
        "/admin/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert response.headers["location"] == "/admin/enrol"
    return client, token


def test_a_stale_enrolment_session_cannot_replace_two_factor(stack: Stack, tmp_path: Path) -> None:
    admin = make_admin(stack.sessions, stack.settings, "admin", two_factor=False)
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        stale, stale_token = _signed_in_to_enrol(base, admin.email)
        assert SEED_MARK in stale.get("/admin/enrol").text
        owner, owner_token = _signed_in_to_enrol(base, admin.email)
        seed = owner.get("/admin/enrol").text.split(SEED_MARK)[1].split("<")[0]
        done = owner.post(
            "/admin/enrol", data={"csrf_token": owner_token, "code": pyotp.TOTP(seed).now()}
        )
        assert done.status_code == 200
        # The stale session reloads the page, then posts a code of a seed of its own.
        reloaded = stale.get("/admin/enrol")
        assert reloaded.status_code == 409
        assert SEED_MARK not in reloaded.text
        posted = stale.post("/admin/enrol", data={"csrf_token": stale_token, "code": "123456"})
        assert posted.status_code == 409
        stale.close()
        owner.close()
    with stack.sessions() as session:
        user = accounts.get_admin(session, admin.user_id)
        assert user.totp_enabled
        assert two_factor.totp_seed(stack.settings, user) == seed


def test_sign_in_failures_and_key_age_are_exported_for_their_alerts(stack: Stack) -> None:
    from datetime import date, timedelta

    from paydesk.analytics.prometheus import PaydeskMetrics

    admin = make_admin(stack.sessions, stack.settings, "viewer", two_factor=False)
    with stack.sessions() as session:
        for n in range(3):
            with pytest.raises(AuthenticationRequired):
                accounts.check_password(
                    session, stack.settings, admin.email, f"wrong-{n}", source_address="192.0.2.1"
                )
            session.commit()
    created = date.today() - timedelta(days=85)
    text = (
        PaydeskMetrics(stack.sessions, cache_seconds=0, key_created=created).exposition().decode()
    )
    assert "paydesk_admin_sign_in_failures_15m 3.0" in text
    assert "paydesk_stripe_key_age_days 85.0" in text


def test_one_account_failing_does_not_throttle_its_address_for_others(stack: Stack) -> None:
    from paydesk.errors import RateLimited

    office = "192.0.2.50"
    clumsy = make_admin(stack.sessions, stack.settings, "viewer", email="clumsy@x.test")
    colleague = make_admin(stack.sessions, stack.settings, "viewer", email="colleague@x.test")
    with stack.sessions() as session:
        for n in range(accounts.ADDRESS_FAILURE_LIMIT + 2):
            with pytest.raises((AuthenticationRequired, RateLimited)):
                accounts.check_password(
                    session, stack.settings, clumsy.email, f"typo-{n}", source_address=office
                )
            session.commit()
        # Behind the same address, a colleague's right password still works.
        user = accounts.check_password(
            session, stack.settings, colleague.email, colleague.password, source_address=office
        )
        assert user.id == colleague.user_id
