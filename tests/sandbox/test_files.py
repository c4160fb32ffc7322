"""``/v1/files`` (dispute evidence uploads) through the official SDK's multipart."""

from __future__ import annotations

import base64
import io
import json
import socket

import httpx
import pytest
import stripe
from sandbox_shapes import assert_same_keys
from sandbox_testkit import TEST_KEY

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n% evidence\n"


def _client(url: str) -> stripe.StripeClient:
    # Uploads go to the SDK's "files" base address (files.stripe.com at Stripe).
    return stripe.StripeClient(
        TEST_KEY, base_addresses={"api": url, "files": url}, max_network_retries=0
    )


def _upload(client: stripe.StripeClient, data: bytes, name: str = "receipt.png") -> stripe.File:
    handle = io.BytesIO(data)
    handle.name = name
    return client.v1.files.create({"file": handle, "purpose": "dispute_evidence"})


def test_upload_retrieve_list_and_contents(sandbox_url: str) -> None:
    client = _client(sandbox_url)
    uploaded = _upload(client, PNG)
    assert uploaded.id.startswith("file_")
    assert (uploaded.object, uploaded.purpose, uploaded.type) == ("file", "dispute_evidence", "png")
    assert uploaded.size == len(PNG)
    assert uploaded.filename == "receipt.png"
    assert_same_keys(uploaded, "file")  # Stripe's sample file object (reference fixtures)
    assert uploaded.links is not None
    assert uploaded.links.object == "list"
    assert client.v1.files.retrieve(uploaded.id).size == len(PNG)
    second = _upload(client, PDF, "letter.pdf")
    assert second.type == "pdf"
    listed = client.v1.files.list({"purpose": "dispute_evidence", "limit": 1})
    assert [f.id for f in listed.data] == [second.id]
    assert listed.has_more
    contents = httpx.get(f"{sandbox_url}/v1/files/{uploaded.id}/contents", auth=(TEST_KEY, ""))
    assert contents.status_code == 200
    assert contents.content == PNG


def test_refused_uploads(sandbox_url: str) -> None:
    client = _client(sandbox_url)
    with pytest.raises(stripe.InvalidRequestError) as wrong_type:
        _upload(client, b"MZ\x90\x00 an executable", "receipt.png")
    assert wrong_type.value.param == "file"
    with pytest.raises(stripe.InvalidRequestError) as too_big:
        _upload(client, PDF + b"0" * (5 * 1024 * 1024))
    assert "5 MB" in str(too_big.value.user_message)
    handle = io.BytesIO(PNG)
    with pytest.raises(stripe.InvalidRequestError) as purpose:
        client.v1.files.create({"file": handle, "purpose": "business_logo"})
    assert purpose.value.param == "purpose"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.files.create({"file": "not a file part", "purpose": "dispute_evidence"})
    assert missing.value.param == "file"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.files.retrieve("file_missing")


def test_oversized_body_refused_from_its_length(sandbox_url: str) -> None:
    """64 MB announced, a few bytes sent: answered from the headers (a raw socket,
    since an HTTP client will not send less than it announced)."""
    host, port = sandbox_url.removeprefix("http://").split(":")
    auth = base64.b64encode(f"{TEST_KEY}:".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (
                "POST /v1/files HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Basic {auth}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {64 * 1024 * 1024}\r\nConnection: close\r\n\r\n--x\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["param"] == "file"


def test_evidence_file_fields_take_uploaded_files(sandbox_url: str) -> None:
    client = _client(sandbox_url)
    intent = client.v1.payment_intents.create(
        {
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "confirm": True,
            "payment_method_types": ["card"],
        }
    )
    dispute = client.v1.disputes.list({"payment_intent": intent.id}).data[0]
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.disputes.update(
            dispute.id, {"evidence": {"receipt": "file_nope"}, "submit": False}
        )
    assert unknown.value.param == "evidence[receipt]"
    receipt = _upload(client, PNG)
    won = client.v1.disputes.update(
        dispute.id,
        {"evidence": {"receipt": receipt.id, "uncategorized_text": "winning_evidence"}},
    )
    assert won.status == "won"
    assert won.evidence.receipt == receipt.id
