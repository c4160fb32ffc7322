"""Hostile input: fuzz the whole OpenAPI, the webhook endpoint and every filter and form.

One real Paydesk (sandbox stack, PostgreSQL, uvicorn on loopback) serves every check;
``Tally`` counts what the server itself answered, so "zero 5xx" is the server's figure.

- Schemathesis (its CLI, as a user runs it) against ``/openapi.json``: every operation,
  every phase (examples, coverage, fuzzing, stateful) and every check; authenticated with
  an admin API token (the billing API with an app JWT) so requests reach the handlers,
  and once without credentials, where every protected operation must answer 401.
- Hypothesis over HTTP against ``POST /api/webhooks/stripe``: malformed signatures,
  bodies and encodings, huge payloads, timestamps beyond the tolerance either way,
  signatures valid for another body or secret, duplicate headers. Each is a 4xx, stores
  nothing, and is recorded; a valid delivery is a 200 (so the check can fail).
- Injection-looking strings in every Admin API filter and every console filter and form:
  no 5xx, no SQL error text, HTML escaped, nothing changed that should not be.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paydesk.stripe_gateway.webhook_signature import DEFAULT_TOLERANCE_SECONDS
from tests.reliability.conftest import Scale
from tests.reliability.support_hostile import (
    OTHER_SECRET,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    HostileServer,
    console_client,
    console_routes,
    csrf_of,
    hostile_server,
    signature_header,
)
from tests.support.admins import make_admin, make_token
from tests.webhooks.support import event_dict, payment_intent

ST = Path(sys.executable).parent / "st"
PROTECTED = ("/api/admin/", "/api/billing/")
PUBLIC = ("/api/billing/config",)
SEED = 8_2026


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with hostile_server() as server:
        yield server


# --------------------------------------------------------------------------- schemathesis


def _config(
    path: Path, token: str | None, app_jwt: str | None, customer: str | None = None
) -> Path:
    """A schemathesis.toml: credentials, and the one check that cannot apply to webhooks."""
    lines = []
    if token:
        lines += ["[headers]", f'Authorization = "Bearer {token}"', ""]
    if customer:
        # Creating payments and subscriptions needs a customer that exists: with one, the
        # stateful phase chains create → read → capture/refund/cancel through the links.
        lines += ["[parameters]", f'"body.customer" = "{customer}"', ""]
    # Every check runs (schemathesis's default is all of them). A schema-valid request may
    # still be refused with a 422 by the domain rules a schema cannot state: a currency's
    # minimum charge, an e-mail domain reserved for tests, a payment method that does not
    # exist, start before end. Any other refusal (400, 5xx, …) still fails the check.
    lines += [
        "[checks.positive_data_acceptance]",
        'expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]',
        "",
    ]
    # A schema fuzzer cannot sign a delivery (HMAC over the body with our secret), so a
    # schema-valid webhook request is rightly refused; test_webhook_* fuzz it signed.
    lines += [
        "[[operations]]",
        f'include-path = "{WEBHOOK_PATH}"',
        "checks.positive_data_acceptance.enabled = false",
        "",
    ]
    if app_jwt:
        lines += [
            "[[operations]]",
            'include-path-regex = "^/api/billing/"',
            f'headers = {{ Authorization = "Bearer {app_jwt}" }}',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def _schemathesis(
    server: HostileServer,
    workdir: Path,
    scale: Scale,
    *args: str,
    token: str | None = None,
    customer: str | None = None,
) -> dict[str, Any]:
    """Run ``st run`` against the served schema; what it sent, got and found."""
    workdir.mkdir(parents=True, exist_ok=True)
    jwt = server.app_jwt() if token else None
    config = _config(workdir / "schemathesis.toml", token, jwt, customer)
    report = workdir / "events.ndjson"
    command = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--max-examples",
        str(scale.pick(6, 25)),
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--output-truncate",
        "false",
        "--continue-on-failure",
        *([] if scale.full else ["--seed", str(SEED)]),
        *args,
    ]
    import subprocess

    done = subprocess.run(
        command, capture_output=True, text=True, timeout=scale.pick(300, 900), check=False
    )
    (workdir / "output.txt").write_text(done.stdout + done.stderr)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    failures: Counter[str] = Counter()
    requests = 0
    operations = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "LoadingFinished" in event:
            operations = event["LoadingFinished"]["statistic"]["operations"]["selected"]
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        for checks in finished["recorder"].get("checks", {}).values():
            for check in checks:
                if check["status"] == "failure":
                    failures[check["name"]] += 1
        for interaction in finished["recorder"].get("interactions", {}).values():
            requests += 1
            request, response = interaction["request"], interaction.get("response")
            path = "/" + request["uri"].split("/", 3)[3].split("?", 1)[0]
            if response is not None:
                statuses[f"{request['method']} {path}"][response["status_code"]] += 1
    return {
        "returncode": done.returncode,
        "output": done.stdout[-20_000:] + done.stderr[-5_000:],
        "operations": operations,
        "requests": requests,
        "failures": failures,
        "statuses": statuses,
    }


@pytest.mark.timeout(1500)
def test_openapi_fuzzed_with_credentials_has_no_5xx_and_matches_its_schema(
    hostile: HostileServer, scale: Scale, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """Stateless and stateful schemathesis, every operation and check, as an admin."""
    requests_before, errors_before = hostile.tally.mark()
    started = time.monotonic()
    # Revoking a token could revoke the run's own: that one operation runs on its own,
    # last, with a token of another admin.
    headers = {"Authorization": f"Bearer {hostile.admin_token}"}
    with httpx.Client(base_url=hostile.base_url, timeout=30, headers=headers) as api:
        customer = _seed_business_data(hostile, api)["customer"]
    # The short run skips the coverage phase (boundary values of every parameter, about
    # a minute on its own); the full run has every phase.
    phases = scale.pick("examples,fuzzing,stateful", "examples,coverage,fuzzing,stateful")
    main = _schemathesis(
        hostile,
        tmp_path / "main",
        scale,
        "--phases",
        phases,
        "--exclude-path-regex",
        "^/api/admin/tokens/",
        token=hostile.admin_token,
        customer=customer,
    )
    other = make_admin(
        hostile.stack.sessions, hostile.stack.settings, "admin", email="revoker@example.com"
    )
    revoke = _schemathesis(
        hostile,
        tmp_path / "revoke",
        scale,
        "--phases",
        phases,
        "--include-path-regex",
        "^/api/admin/tokens/",
        token=make_token(hostile.stack.sessions, hostile.stack.settings, other),
    )
    requests, server_errors = hostile.tally.requests, hostile.tally.server_errors[errors_before:]
    failures = main["failures"] + revoke["failures"]
    figures.update(
        operations=main["operations"] + revoke["operations"],
        requests=requests - requests_before,
        server_errors=len(server_errors),
        schema_violations=failures["response_schema_conformance"],
        check_failures=sum(failures.values()),
        fuzz_seconds=round(time.monotonic() - started, 1),
    )
    assert not server_errors, f"the server answered 5xx: {server_errors[:20]}"
    assert main["returncode"] == 0, main["output"]
    assert revoke["returncode"] == 0, revoke["output"]
    assert not failures, failures
    # The credentials worked: every protected operation was answered something else
    # than 401 (a typo in the token would make the whole run a 401 test).
    reached = {**main["statuses"], **revoke["statuses"]}
    for label, counts in reached.items():
        if label.split(" ", 1)[1].startswith(PROTECTED) and counts:
            assert set(counts) - {401}, f"{label} only ever answered 401"
    assert main["operations"] >= 35, main["operations"]


@pytest.mark.timeout(900)
def test_openapi_fuzzed_without_credentials_answers_401(
    hostile: HostileServer, scale: Scale, tmp_path: Path, figures: dict[str, Any]
) -> None:
    """The same run with no credentials: every protected operation refuses, in schema."""
    _, errors_before = hostile.tally.mark()
    phases = scale.pick("examples,fuzzing", "examples,coverage,fuzzing")
    run = _schemathesis(hostile, tmp_path / "anonymous", Scale(full=False), "--phases", phases)
    server_errors = hostile.tally.server_errors[errors_before:]
    refused = 0
    for label, counts in run["statuses"].items():
        path = label.split(" ", 1)[1]
        if not path.startswith(PROTECTED) or path.startswith(PUBLIC):
            continue
        succeeded = sum(n for status, n in counts.items() if status < 400)
        assert not succeeded, f"{label} answered {dict(counts)} without credentials"
        refused += counts[401]
    figures.update(anonymous_requests=run["requests"], refused_401=refused)
    assert not server_errors, f"the server answered 5xx: {server_errors[:20]}"
    assert run["returncode"] == 0, run["output"]
    assert refused > 50, refused


# --------------------------------------------------------------------------- webhooks


def _event(**extra: Any) -> dict[str, Any]:
    return event_dict("payment_intent.succeeded", payment_intent(**extra))


def _signed(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return signature_header(body, secret, timestamp)


Delivery = tuple[bytes | list[bytes], list[tuple[str, bytes]]]  # body (or chunks), headers
_HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=300,
)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON encoders write
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _headers(*signatures: str | bytes) -> list[tuple[str, bytes]]:
    values = [s if isinstance(s, bytes) else s.encode("latin-1") for s in signatures]
    return [("Content-Type", b"application/json"), *(("Stripe-Signature", v) for v in values)]


def _valid_body() -> bytes:
    return orjson.dumps(_event())


@st.composite
def _malformed_signature(draw: st.DrawFn) -> Delivery:
    body = _valid_body()
    now = int(time.time())
    mac = _signed(body).split("v1=", 1)[1]
    header = draw(
        st.one_of(
            _HEADER_TEXT,
            st.sampled_from(
                [
                    "",
                    " ",
                    "t=",
                    "v1=",
                    "t=,v1=",
                    f"t={now}",
                    f"v1={mac}",
                    f"t=abc,v1={mac}",
                    f"t={now}.5,v1={mac}",
                    f"t=-{now},v1={mac}",
                    f"t={now},v0={mac}",
                    f"t={now},v1={mac[:-2]}",
                    f"t={now},v1={mac.upper()}",
                    f"t={now},v1={mac}00",
                    f"t={now};v1={mac}",
                    f"t={now},v1=",
                    f"t={'9' * 400},v1={mac}",
                    f"t={now}," + ",".join(["v1=00"] * 500),
                ]
            ),
        )
    )
    header = header.strip(" \t")  # HTTP clients refuse values with surrounding blanks
    if not header:
        return body, [("Content-Type", b"application/json"), ("Stripe-Signature", b"")]
    return body, _headers(header)


@st.composite
def _missing_signature(draw: st.DrawFn) -> Delivery:
    body = draw(st.sampled_from([_valid_body(), b"", b"{}"]))
    return body, [("Content-Type", b"application/json")]


@st.composite
def _not_json(draw: st.DrawFn) -> Delivery:
    body = draw(
        st.one_of(
            st.binary(max_size=2000),
            st.sampled_from([b"", b"{", b"{'id': 'evt_1'}", b"<xml/>", b"id=1&t=x", b"\x00" * 64]),
        ).filter(_is_not_json)
    )
    return body, _headers(_signed(body))


def _is_not_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    return False


@st.composite
def _json_not_event(draw: st.DrawFn) -> Delivery:
    event = _event()
    value = draw(
        st.one_of(
            _JSON,
            st.sampled_from(
                [
                    {**event, "object": "charge"},
                    {k: v for k, v in event.items() if k != "id"},
                    {k: v for k, v in event.items() if k != "type"},
                    {k: v for k, v in event.items() if k != "data"},
                    {**event, "id": "ch_123"},
                    {**event, "id": 12345},
                    {**event, "id": "evt_" + "x" * 300},
                    {**event, "type": ""},
                    {**event, "type": "t" * 200},
                    {**event, "created": "yesterday"},
                    {**event, "created": 1.5},
                    {**event, "data": {"object": "nope"}},
                    {**event, "data": []},
                    [event],
                ]
            ),
        )
    )
    body = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    return body, _headers(_signed(body))


@st.composite
def _bad_encoding(draw: st.DrawFn) -> Delivery:
    event = _event(description=draw(st.sampled_from(["café ☕ 支払い", "plain"])))
    text = orjson.dumps(event).decode()
    body = draw(
        st.sampled_from(
            [
                text.encode("utf-16"),  # with BOM
                text.encode("utf-16-le"),
                text.encode("utf-32"),
                b"\xef\xbb\xbf" + text.encode(),  # UTF-8 BOM
                text.replace('"plain"', '"\xff\xfe\xc3\x28"').encode("latin-1", "replace")
                if '"plain"' in text
                else text.encode().replace("café".encode(), b"caf\xe9"),
                text.encode().replace(b'"evt_', b'"evt_\xc0\xaf'),  # overlong UTF-8
                text.encode().replace(b'"evt_', b'"evt_\xed\xa0\x80'),  # lone surrogate
                text.encode().replace(b'"evt_', b'"evt_\x00'),  # raw NUL in a string
            ]
        )
    )
    return body, _headers(_signed(body))


@st.composite
def _huge(draw: st.DrawFn) -> Delivery:
    extra = draw(st.integers(min_value=1, max_value=256 * 1024))
    body = orjson.dumps(_event(description="x" * (512 * 1024 + extra)))
    if draw(st.booleans()):  # streamed: no Content-Length, the cap counts as it reads
        chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        return chunks, _headers(_signed(body))
    return body, _headers(_signed(body))


@st.composite
def _stale_or_future(draw: st.DrawFn) -> Delivery:
    body = _valid_body()
    beyond = draw(st.integers(min_value=5, max_value=10**9))
    direction = draw(st.sampled_from([-1, 1]))
    timestamp = int(time.time()) + direction * (DEFAULT_TOLERANCE_SECONDS + beyond)
    return body, _headers(_signed(body, timestamp=max(timestamp, 0)))


@st.composite
def _replayed_signature(draw: st.DrawFn) -> Delivery:
    """A genuine signature of another body, or our body signed with another secret."""
    original = _event(amount=draw(st.integers(min_value=50, max_value=10**6)))
    signed_body = orjson.dumps(original)
    kind = draw(st.sampled_from(["tampered", "other_event", "other_secret", "two_secrets"]))
    if kind == "tampered":
        body = orjson.dumps({**original, "data": {"object": {**original["data"]["object"]}}})
        body = body.replace(b'"amount":', b'"amount":9', 1)
        return body, _headers(_signed(signed_body))
    if kind == "other_event":
        return _valid_body(), _headers(_signed(signed_body))
    secret = draw(st.sampled_from([OTHER_SECRET, "whsec_", WEBHOOK_SECRET + "x"]))
    header = _signed(signed_body, secret)
    if kind == "two_secrets":  # both v1 entries wrong: one for another body, one other secret
        header += ",v1=" + _signed(orjson.dumps(_event()), WEBHOOK_SECRET).split("v1=")[1]
    return signed_body, _headers(header)


@st.composite
def _duplicate_headers(draw: st.DrawFn) -> Delivery:
    """Two Stripe-Signature headers, one of them genuine: ambiguous, so refused."""
    body = _valid_body()
    good = _signed(body)
    bad = draw(st.sampled_from(["t=1,v1=00", _signed(body, OTHER_SECRET), "garbage"]))
    first, second = draw(st.permutations([good, bad]))
    return body, _headers(first, second)


BAD_DELIVERIES = {
    "malformed_signature": _malformed_signature(),
    "missing_signature": _missing_signature(),
    "not_json": _not_json(),
    "json_not_event": _json_not_event(),
    "bad_encoding": _bad_encoding(),
    "huge": _huge(),
    "stale_or_future": _stale_or_future(),
    "replayed_signature": _replayed_signature(),
    "duplicate_headers": _duplicate_headers(),
}


def _deliver(client: httpx.Client, delivery: Delivery) -> httpx.Response:
    body, headers = delivery
    content: Any = iter(body) if isinstance(body, list) else body
    return client.post(WEBHOOK_PATH, content=content, headers=headers)


@pytest.mark.parametrize("kind", list(BAD_DELIVERIES))
def test_webhook_refuses_hostile_deliveries(
    hostile: HostileServer, scale: Scale, kind: str, figures: dict[str, Any]
) -> None:
    """Each generated bad delivery: 4xx in the error shape, nothing stored, recorded."""
    stored_before, rejected_before = hostile.stored_events(), hostile.rejections()
    answers: Counter[int] = Counter()
    sent = 0
    with httpx.Client(base_url=hostile.base_url, timeout=30) as client:

        @settings(
            max_examples=scale.pick(8, 150),
            derandomize=not scale.full,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(delivery=BAD_DELIVERIES[kind])
        def refused(delivery: Delivery) -> None:
            nonlocal sent
            response = _deliver(client, delivery)
            sent += 1
            answers[response.status_code] += 1
            assert 400 <= response.status_code < 500, (response.status_code, response.text)
            error = response.json()["error"]
            assert error["code"], error
            assert error["request_id"], error

        refused()
    stored = hostile.stored_events() - stored_before
    recorded = hostile.rejections() - rejected_before
    figures.update(webhook_cases=sent, stored_bad=stored)
    assert stored == 0, f"{stored} hostile deliveries were stored"
    assert recorded == sent, f"{sent} refused, {recorded} recorded"
    assert sent >= 3, sent  # small families (missing header, encodings) run out of cases


def test_webhook_accepts_a_genuine_delivery_once(
    hostile: HostileServer, figures: dict[str, Any]
) -> None:
    """The control: a genuine delivery is stored; its exact replay is a no-op 200."""
    stored_before = hostile.stored_events()
    body = _valid_body()
    headers = _headers(_signed(body))
    with httpx.Client(base_url=hostile.base_url, timeout=30) as client:
        first = client.post(WEBHOOK_PATH, content=body, headers=headers)
        again = client.post(WEBHOOK_PATH, content=body, headers=headers)
        near_edge = _valid_body()
        edge = client.post(
            WEBHOOK_PATH,
            content=near_edge,
            headers=_headers(_signed(near_edge, timestamp=int(time.time()) - 200)),
        )
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False}
    assert again.status_code == 200, again.text
    assert again.json() == {"received": True, "duplicate": True}
    assert edge.status_code == 200, edge.text
    assert hostile.stored_events() - stored_before == 2
    figures.update(webhook_cases=3)


# --------------------------------------------------------------------------- injection

INJECTIONS = [
    "' OR 1=1 --",
    '" OR "1"="1',
    "'; DROP TABLE payments; --",
    "1 UNION SELECT password_hash FROM admin_users",
    "%' OR '%'='",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{91919*1000003}}",
    "${91919*1000003}",
    "{% print(91919*1000003) %}",
    "%00",
    "\x00",
    "a\x00' OR 1=1 --",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "\\..\\..\\windows\\win.ini",
    "A" * 10_000,
    "😀 𝕏 \u202e\ufeff ﷽ Ω",
    "\u0130\u0131 İstanbul ß ﬁ",
    "cus_' OR '1'='1",
    "-1",
    "99999999999999999999999999",
    "1e309",
    "NaN",
]
# The short run sends one of each kind (SQL, markup, template, NUL, traversal, length,
# unicode, number edge); the full run all of them.
SHORT_INJECTIONS = [INJECTIONS[i] for i in (0, 5, 7, 12, 13, 16, 17, 23)]
EVALUATED = str(91919 * 1000003)  # what the template payloads would render as
# Text a database or framework error would carry; none of the payloads contains it.
LEAKS = [
    "syntax error",
    "psycopg",
    "sqlalchemy",
    "sqlite3",
    "Traceback",
    "OperationalError",
    "ProgrammingError",
    "DataError",
    "IntegrityError",
    "LINE 1:",
    "[SQL:",
    "pg_catalog",
    "root:x:0:0",
]
BUSINESS_TABLES = [
    "customers",
    "payments",
    "refunds",
    "subscriptions",
    "disputes",
    "invoices",
    "stripe_events",
    "admin_users",
    "admin_api_tokens",
    "products",
    "prices",
]


def _fingerprint(server: HostileServer) -> dict[str, Any]:
    """Row count and content digest of every business table."""
    from sqlalchemy import text

    prints: dict[str, Any] = {}
    with server.engine.connect() as connection:
        for table in BUSINESS_TABLES:
            rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()  # noqa: S608
            # last_used_at of the credentials the checks use moves; nothing else may.
            shown = [
                tuple(v for k, v in row._mapping.items() if not k.startswith("last_"))
                for row in rows
            ]
            prints[table] = (len(rows), hash(repr(shown)))
    return prints


def _csv_download(response: httpx.Response) -> bool:
    """A CSV file to save (the audit export), which no browser renders as a page."""
    headers = response.headers
    return (
        headers.get("content-type", "").startswith("text/csv")
        and headers.get("content-disposition", "").startswith("attachment")
        and headers.get("x-content-type-options") == "nosniff"
    )


def _harmless(response: httpx.Response, what: str, *, html: bool = False) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    text = response.text
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), f"{what}: {leak!r} in the answer"
    assert EVALUATED not in text, f"{what}: a template expression was evaluated"
    if response.status_code == 200 and _csv_download(response):
        # Markup in a cell is inert in a download (the audit log records what a refused
        # action was aimed at, as typed); what a spreadsheet would run is a formula.
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), f"{what}: {cell!r}"
    elif html or "html" in response.headers.get("content-type", ""):
        assert "<script>alert(" not in text, f"{what}: unescaped <script> in the page"
        assert "<img src=x" not in text, f"{what}: unescaped markup in the page"
    elif response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json()["error"]
        assert set(error) >= {"code", "message", "field", "request_id"}, error


def _seed_business_data(server: HostileServer, api: httpx.Client) -> dict[str, str]:
    """A customer and a payment, so a filter that matched everything would show rows."""
    customer = api.post(
        "/api/admin/customers",
        json={"user_id": f"hostile-seed-{time.time_ns()}", "email": "seed@example.com"},
    )
    assert customer.status_code in (200, 201), customer.text
    customer_id = customer.json()["id"]
    payment = api.post(
        "/api/admin/payments",
        json={
            "customer": customer_id,
            "amount": 1234,
            "currency": "usd",
            "payment_method": "pm_card_visa",
        },
    )
    assert payment.status_code in (200, 201), payment.text
    return {"customer": customer_id, "payment": payment.json()["payment"]["id"]}


def test_injection_strings_in_every_admin_api_filter_are_harmless(
    hostile: HostileServer, scale: Scale, figures: dict[str, Any]
) -> None:
    """Every query parameter of every GET operation, and every path id, gets each payload."""
    payloads = scale.pick(SHORT_INJECTIONS, INJECTIONS)
    headers = {"Authorization": f"Bearer {hostile.fresh_token()}"}
    with httpx.Client(base_url=hostile.base_url, timeout=30, headers=headers) as api:
        seeded = _seed_business_data(hostile, api)
        spec = api.get("/openapi.json").json()
        before = _fingerprint(hostile)
        cases = 0
        for path, operations in spec["paths"].items():
            get = operations.get("get")
            if get is None or not path.startswith("/api/"):
                continue
            for parameter in get.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                if where not in ("query", "path"):
                    continue
                for payload in payloads:
                    url = path.replace("{" + name + "}", _path_segment(payload))
                    params = {name: payload} if where == "query" else {}
                    response = api.get(url, params=params)
                    cases += 1
                    _harmless(response, f"GET {path} {name}={payload[:40]!r}")
                    body = response.json() if response.status_code == 200 else None
                    if where == "query" and isinstance(body, dict) and "data" in body:
                        # A literal that matches nothing; a filter turned into a tautology
                        # (or ignored) would list the seeded rows.
                        assert body["data"] == [], f"{path}?{name}={payload[:40]!r} listed rows"
        # The seeded rows are still found by their real values (so "no rows" above means
        # something).
        found = api.get("/api/admin/payments", params={"customer": seeded["customer"]}).json()
        assert [row["id"] for row in found["data"]] == [seeded["payment"]]
    assert _fingerprint(hostile) == before, "an injection changed data"
    figures.update(injection_cases=cases)
    assert cases > 100, cases


def _path_segment(payload: str) -> str:
    return quote(payload, safe="") or "x"


FORM_FIELDS = [
    "amount",
    "code",
    "confirm",
    "days",
    "email",
    "form_key",
    "name",
    "note",
    "password",
    "reason",
    "recovery_code",
    "role",
    "tier",
    "when",
]
SIGN_IN_FORMS = ("/admin/login", "/admin/2fa", "/admin/enrol", "/admin/logout")
REAL_ACTIONS = {
    "/admin/admins/{admin_id}/{action}": ["disable", "reset-2fa", "role"],
    "/admin/subscriptions/{subscription_id}/{action}": ["tier", "cancel", "resume"],
}


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_injection_strings_in_every_console_filter_and_form_are_harmless(
    hostile: HostileServer, scale: Scale, figures: dict[str, Any]
) -> None:
    """Every console filter, path and form field gets each payload, signed in as an admin."""
    payloads = scale.pick(SHORT_INJECTIONS, INJECTIONS)
    headers = {"Authorization": f"Bearer {hostile.fresh_token()}"}
    with httpx.Client(base_url=hostile.base_url, timeout=30, headers=headers) as api:
        seeded = _seed_business_data(hostile, api)
        other_admin = next(a for a in api.get("/api/admin/admins").json() if not a["disabled"])
        token_id = api.get("/api/admin/tokens").json()[0]["id"]
    client, csrf = console_client(hostile)
    real = {
        "payment_id": seeded["payment"],
        "admin_id": str(other_admin["id"]),
        "token_id": str(token_id),
        "subscription_id": "sub_missing",
        "event_id": "evt_missing",
    }
    before = _fingerprint(hostile)
    cases = 0
    try:
        for method, path, path_params, query in console_routes(hostile.app):
            if path in SIGN_IN_FORMS:
                continue
            for payload in payloads:
                targets = []
                hostile_ids = {name: _path_segment(payload) for name in path_params}
                if path_params:
                    targets.append(_fill(path, hostile_ids))
                real_ids = {n: real.get(n, "x") for n in path_params}
                for action in REAL_ACTIONS.get(path, [None]):
                    ids = real_ids | ({"action": action} if action else {})
                    targets.append(_fill(path, ids))
                for url in dict.fromkeys(targets):
                    if method == "GET":
                        for name in query or [None]:
                            params = {name: payload} if name else {}
                            response = client.get(url, params=params)
                            cases += 1
                            _harmless(response, f"GET {url} {name}={payload[:40]!r}", html=True)
                    else:
                        form = dict.fromkeys(FORM_FIELDS, payload) | {"csrf_token": csrf}
                        response = client.post(url, data=form)
                        cases += 1
                        _harmless(response, f"POST {url} {payload[:40]!r}", html=True)
        # Still signed in: nothing above signed the session out or broke it.
        assert client.get("/admin/").status_code == 200
    finally:
        client.close()
    cases += _sign_in_forms(hostile, payloads)
    assert _fingerprint(hostile) == before, "an injection changed data"
    figures.update(injection_cases=cases)
    assert cases > 100, cases


def _sign_in_forms(hostile: HostileServer, payloads: list[str]) -> int:
    """The sign-in forms (no session yet): each field gets each payload."""
    cases = 0
    with httpx.Client(base_url=hostile.base_url, timeout=30) as anonymous:
        csrf = csrf_of(anonymous.get("/admin/login").text)
        for payload in payloads:
            for path in SIGN_IN_FORMS:
                form = dict.fromkeys(FORM_FIELDS, payload) | {"csrf_token": csrf}
                response = anonymous.post(path, data=form)
                cases += 1
                _harmless(response, f"POST {path} {payload[:40]!r}", html=True)
    return cases
