"""Dispute evidence files from the console: uploaded to Stripe's Files API (the
sandbox over real HTTP), their ids put in the dispute's evidence; hostile uploads
are refused before anything reaches Stripe; a browser wins a dispute with a file."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
from sqlalchemy import select

from paydesk.billing.mirror import apply_dispute
from paydesk.db.models import AuditEntry
from paydesk.web import create_app
from paydesk.web.limits import body_limit, upload_route
from tests.support.admins import make_admin, make_token
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack
from tests.web.console.test_browser import browser, shot, sign_in
from tests.web.console.test_browser_operator import no_sideways_scroll
from tests.web.console.test_operator import Console

__all__ = ["browser"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 256
PDF = b"%PDF-1.4\n% a letter to the customer\n"


def open_dispute(stack: Stack, base: str, n: int = 1) -> str:
    """A payment with Stripe's dispute test card; its dispute's id."""
    admin = make_admin(stack.sessions, stack.settings, "admin", email=f"dfseed{n}@paydesk.test")
    token = make_token(stack.sessions, stack.settings, admin)
    with httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        customer = api.post("/api/admin/customers", json={"user_id": f"df-{n}"}).json()["id"]
        paid = api.post(
            "/api/admin/payments",
            json={
                "customer": customer,
                "amount": 4200,
                "currency": "usd",
                "payment_method": "pm_card_createDispute",
            },
        )
        assert paid.status_code == 200, paid.text
    payment = paid.json()["payment"]["id"]
    [dispute] = stack.sdk.v1.disputes.list({"payment_intent": payment}).data
    # Mirror it as the worker would on charge.dispute.created (no worker runs here).
    with stack.sessions() as session:
        apply_dispute(session, stack.gateway.retrieve_dispute(dispute.id), int(time.time()))
        session.commit()
    return str(dispute.id)


def uploaded_ids(stack: Stack) -> list[str]:
    return [f.id for f in stack.sdk.v1.files.list({"limit": 100}).data]


def raw_post(
    base: str, path: str, headers: dict[str, str], announced: int
) -> tuple[int, dict[str, str], Any]:
    """POST announcing ``announced`` bytes but sending a few: the answer can only
    come from the headers (an HTTP client will not send less than it announces)."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {announced}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join([*lines, "Connection: close", "", ""]) + "--x\r\n").encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answered = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), answered, json.loads(body) if body else None


def test_evidence_files_hostile_cases(stack: Stack, base_url: str, console_as: Console) -> None:
    dispute = open_dispute(stack, base_url)
    url = f"/admin/disputes/{dispute}/evidence"
    files = {"receipt": ("receipt.png", PNG, "image/png")}
    multipart = {"content-type": "multipart/form-data; boundary=x", "origin": base_url}

    # Anonymous: refused from the headers, before the body is read.
    status, headers, _ = raw_post(base_url, url, multipart, 5 * 1024 * 1024)
    assert status == 303  # to the sign-in page, as from every console route
    assert headers["location"] == "/admin/login"

    # Wrong role and forged CSRF: refused, nothing uploaded to Stripe.
    support, support_token = console_as("support")
    refused = support.post(url, data={"csrf_token": support_token, "submit": "draft"}, files=files)
    assert refused.status_code == 403
    client, token = console_as("finance")
    forged = client.post(url, data={"csrf_token": "forged", "submit": "draft"}, files=files)
    assert forged.status_code == 403
    assert uploaded_ids(stack) == []

    # Oversized: answered 413 from the announced length, even signed in.
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    status, _, body = raw_post(base_url, url, {**multipart, "cookie": cookie}, 7 * 1024 * 1024)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"

    # Wrong type (told from the bytes, not the name) and too much together.
    for bad, field in (
        ({"receipt": ("receipt.png", b"MZ\x90\x00 not an image", "image/png")}, "receipt"),
        (
            {
                "receipt": ("a.pdf", PDF + b"0" * 2_400_000, "application/pdf"),
                "uncategorized_file": ("b.pdf", PDF + b"0" * 2_400_000, "application/pdf"),
            },
            "size",
        ),
    ):
        response = client.post(url, data={"csrf_token": token, "submit": "draft"}, files=bad)
        assert response.status_code == 422, (field, response.text)
    # A forged file id carried as text is refused too.
    forged_id = client.post(
        url, data={"csrf_token": token, "submit": "draft", "receipt": "../etc/passwd"}
    )
    assert forged_id.status_code == 422
    assert uploaded_ids(stack) == []

    # A draft with a file, posted twice (a double click): one upload, attached.
    form = {"csrf_token": token, "submit": "draft", "form_key": "k1"}
    for _ in range(2):
        draft = client.post(url, data=form, files=files)
        assert draft.status_code == 303, draft.text
    [file_id] = uploaded_ids(stack)
    assert stack.sdk.v1.files.retrieve(file_id).size == len(PNG)
    saved = stack.sdk.v1.disputes.retrieve(dispute)
    assert saved.evidence.receipt == file_id
    assert saved.status == "needs_response"
    with stack.sessions() as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "dispute.evidence")
        ).all()
    assert any("receipt" in (a.after or "") and a.outcome == "success" for a in audited), [
        (a.outcome, a.after) for a in audited
    ]


def test_win_a_dispute_with_a_file_in_a_browser(browser: Any, stack: Stack) -> None:
    finance = make_admin(stack.sessions, stack.settings, "finance")
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        dispute = open_dispute(stack, base)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        sign_in(page, base, finance)
        page.goto(f"{base}/admin/disputes/{dispute}")
        page.get_by_label("Receipt").set_input_files(
            files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": PNG}]
        )
        page.get_by_label("Communication with the customer").set_input_files(
            files=[{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF}]
        )
        page.get_by_label("Other evidence").fill("winning_evidence")
        shot(page, "dispute-evidence-files")
        page.get_by_role("button", name="Submit to the bank…").click()
        summary = page.locator(".confirm").inner_text()
        assert "receipt.png" in summary
        assert "letter.pdf" in summary
        page.get_by_role("button", name="Submit evidence").click()
        assert page.locator("#flash").inner_text() == "Evidence submitted to the bank."
        assert page.locator("#dispute-status").inner_text() == "won"
        assert page.locator("#evidence-form").count() == 0
        won = stack.sdk.v1.disputes.retrieve(dispute)
        assert won.status == "won"
        assert won.evidence.receipt is not None
        assert won.evidence.receipt.startswith("file_")
        assert won.evidence.customer_communication is not None
        assert stack.sdk.v1.files.retrieve(won.evidence.customer_communication).type == "pdf"
        closed = stack.sdk.v1.events.list({"type": "charge.dispute.closed"}).data
        assert [e.data.object["status"] for e in closed if e.data.object["id"] == dispute] == [
            "won"
        ]
        shot(page, "dispute-won")
        context.close()

        other = make_admin(stack.sessions, stack.settings, "finance", email="df2@paydesk.test")
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        page = phone.new_page()
        sign_in(page, base, other)
        second = open_dispute(stack, base, 2)
        page.goto(f"{base}/admin/disputes/{second}")
        assert page.get_by_label("Receipt").count() == 1
        no_sideways_scroll(page)
        shot(page, "dispute-evidence-390")
        phone.close()


def test_upload_route_pattern() -> None:
    assert upload_route("/admin/disputes/dp_x/evidence")
    assert body_limit("/admin/disputes/dp_x/evidence") > 64 * 1024
    assert not upload_route("/admin/disputes/dp_x/close")
    assert not upload_route("/admin/disputes/dp_x/evidence/extra")
