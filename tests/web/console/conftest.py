"""A running Paydesk with the console, and browser-like clients signed in per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from paydesk.web import create_app
from tests.support.admins import SeededAdmin, make_admin
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def base_url(stack: Stack) -> Iterator[str]:
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        yield base


def sign_in(base_url: str, admin: SeededAdmin) -> tuple[httpx.Client, str]:
    """A client with a fully signed-in console session, and its CSRF token."""
    client = httpx.Client(base_url=base_url, timeout=30)
    page = client.get("/admin/login")
    token = csrf_of(page.text)
    response = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": admin.email, "password": admin.password},
    )
    assert response.status_code == 303, response.text
    if admin.seed is not None:
        response = client.post("/admin/2fa", data={"csrf_token": token, "code": admin.code()})
        assert response.status_code == 303, response.text
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    # Signed in, forms carry a token bound to the session: the sign-in page's no longer.
    return client, csrf_of(dashboard.text)


@pytest.fixture
def console_as(stack: Stack, base_url: str) -> Iterator[Callable[[str], tuple[httpx.Client, str]]]:
    clients: list[httpx.Client] = []

    def make(role: str) -> tuple[httpx.Client, str]:
        admin = make_admin(stack.sessions, stack.settings, role, two_factor=role != "viewer")
        client, token = sign_in(base_url, admin)
        clients.append(client)
        return client, token

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api_base(base_url: str) -> str:
    """The same server, for Admin API calls."""
    return base_url
