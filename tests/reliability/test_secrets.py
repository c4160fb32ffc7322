"""Secrets: no key, webhook secret, password, TOTP seed, token or card number escapes.

Runs after every other reliability area (the conftest sorts it last), in two parts:

1. an end-to-end pass of its own, once on SQLite and once on PostgreSQL (whose URL
   carries a password): ``paydesk sandbox``, ``serve`` and ``worker`` processes with
   DEBUG logs to files and secrets made up at run time; sign-in with TOTP enrolment,
   an API token, card numbers and a CVC sent to the sandbox, payments (plain,
   3-D Secure, declined), refunds, a subscription, signed and forged webhooks, every
   page and list. Then every response (body and headers), every table row, every log
   and every file written is searched for every secret. The one-time displays (the
   TOTP key on the enrolment page, recovery codes after it, a new API token, the
   session cookie being set) are allowed exactly where they belong.
2. what the whole session left behind: the captured output of every test, the files
   under pytest's base temporary directory and the suite's test-output/ (never the
   demo's var/), searched for the secrets
   of part 1, the suite's own fixture secrets and anything shaped like a Stripe
   secret key, webhook secret, Admin API token or test card number.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import stripe
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from paydesk.auth import accounts, two_factor
from paydesk.db.models import StripeEvent
from paydesk_sandbox.cards import CARDS
from tests.reliability import conftest as reliability
from tests.reliability.support_access import CSRF_COOKIE, SESSION_COOKIE, csrf_of
from tests.reliability.support_load import ProcessStack, process_stack
from tests.support import admins as support_admins
from tests.support import stack as support_stack
from tests.support.databases import postgres_admin_url, require_postgres
from tests.support.waiting import poll
from tests.webhooks import support as webhook_support

ROOT = Path(__file__).resolve().parents[2]
CVC = "473"
# Card numbers the pass sends to the sandbox: success, 3-D Secure, decline, Mastercard.
CARD_NUMBERS = ("4242424242424242", "4000002500003155", "4000000000000002", "5555555555554444")
# Anything of these shapes is a finding in part 2 (the suite's own inputs never print them).
SHAPES = {
    "stripe secret key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{10,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=]{10,}"),
    "admin api token": re.compile(r"\bpdk_[A-Za-z0-9_-]{30,}"),
    "card number": re.compile(
        r"(?<![0-9A-Za-z_])(?:" + "|".join(sorted({c.number for c in CARDS})) + r")(?![0-9])"
    ),
    "cvc": re.compile(r"cvc\W{1,6}\d{3,4}\b", re.IGNORECASE),
}
# Secrets found by part 1, searched for again by part 2 (module state: same session).
_known: dict[str, str] = {}
_scanned: dict[str, int] = {}


def _made_up(prefix: str, length: int = 32) -> str:
    return prefix + secrets.token_hex(length // 2)


@dataclass
class Secrets:
    """Everything the pass must keep to itself, by kind."""

    values: dict[str, str]
    # kind -> where it may appear (response labels); elsewhere it is a finding.
    shown_once: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, value: str, *, shown_in: str | None = None) -> None:
        assert value, kind
        self.values[kind] = value
        if shown_in:
            self.shown_once.setdefault(kind, set()).add(shown_in)


@dataclass
class Finding:
    where: str
    kind: str


def _search(
    where: str, content: str, wanted: dict[str, str], allowed: set[str] | None = None
) -> list[Finding]:
    allowed = allowed or set()
    found = []
    for kind, value in wanted.items():
        if kind not in allowed and value in content:
            found.append(Finding(where, kind))
    if "cvc" in content.lower() and re.search(rf"cvc\W{{1,6}}{CVC}\b", content, re.IGNORECASE):
        found.append(Finding(where, "cvc"))
    return found


# --- part 1: end to end --------------------------------------------------------------


@contextmanager
def _database(kind: str, tmp_path: Path, password: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'paydesk.db'}"
        return
    require_postgres()
    name = f"paydesk_secrets_{uuid.uuid4().hex[:10]}"
    role = f"paydesk_secrets_{uuid.uuid4().hex[:10]}"
    admin = sa_create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
    url = (
        make_url(postgres_admin_url())
        .set(database=name, username=role, password=password)
        .render_as_string(hide_password=False)
    )
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


class Recorder:
    """Every response the pass received, labelled by what it was."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, httpx.Response]] = []
        self.label = ""

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(
            (self.label or f"{response.request.method} {response.url.path}", response)
        )

    def client(self, base_url: str, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=base_url, timeout=60, event_hooks={"response": [self.hook]}, **kwargs
        )


def _flow(stack: ProcessStack, known: Secrets, recorder: Recorder, password: str) -> None:
    """Sign in (enrolling TOTP), make a token, pay, refund, subscribe, receive webhooks."""
    with stack.sessions() as session:
        accounts.create_admin(
            session, stack.settings, email="owner@example.com", role="admin", password=password
        )
        session.commit()
    with recorder.client(stack.base_url) as console:
        csrf = csrf_of(console.get("/admin/login").text)
        wrong = {"csrf_token": csrf, "email": "owner@example.com", "password": password + "!"}
        assert console.post("/admin/login", data=wrong).status_code == 401
        right = {"csrf_token": csrf, "email": "owner@example.com", "password": password}
        assert console.post("/admin/login", data=right).status_code == 303
        recorder.label = "enrol page"
        page = console.get("/admin/enrol").text
        recorder.label = ""
        seed = page.split('id="totp-key">', 1)[1].split("<", 1)[0]
        known.add("totp seed", seed, shown_in="enrol page")
        recorder.label = "recovery codes"
        done = console.post(
            "/admin/enrol", data={"csrf_token": csrf, "code": pyotp.TOTP(seed).now()}
        )
        recorder.label = ""
        codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", done.text)
        assert len(codes) == two_factor.RECOVERY_CODES
        for n, code in enumerate(codes):
            known.add(f"recovery code {n}", code, shown_in="recovery codes")
        known.add(
            "session id (enrolled)",
            console.cookies.get(SESSION_COOKIE, domain="127.0.0.1", path="/admin") or "",
        )
        # Signed in, forms carry a token bound to the session.
        signed_csrf = csrf_of(console.get("/admin/").text)
        recorder.label = "token created"
        created = console.post(
            "/admin/tokens", data={"csrf_token": signed_csrf, "name": "e2e", "role": "admin"}
        )
        recorder.label = ""
        token = re.search(r'<code id="new-token">(pdk_[^<]+)</code>', created.text)
        assert token
        known.add("api token", token.group(1), shown_in="token created")
        assert console.post("/admin/logout", data={"csrf_token": signed_csrf}).status_code == 303
        # Sign in again with the password and the next TOTP code.
        assert console.post("/admin/login", data=right).status_code == 303
        next_code = pyotp.TOTP(seed).at(time.time() + 30)
        assert (
            console.post("/admin/2fa", data={"csrf_token": csrf, "code": next_code}).status_code
            == 303
        )
        session_id = console.cookies.get(SESSION_COOKIE, domain="127.0.0.1", path="/admin")
        known.add("session id", session_id or "")
        known.add(
            "csrf cookie", console.cookies.get(CSRF_COOKIE, domain="127.0.0.1", path="/admin") or ""
        )
        payment_ids = _money(stack, known, recorder, token.group(1))
        _webhooks(stack, recorder)
        for path in (
            "/admin/",
            "/admin/payments",
            *(f"/admin/payments/{p}" for p in payment_ids),
            "/admin/subscriptions",
            "/admin/customers",
            "/admin/events",
            "/admin/audit",
            "/admin/audit.csv",
            "/admin/settings",
            "/admin/access",
            "/admin/disputes",
        ):
            assert console.get(path).status_code == 200, path
        signed_csrf = csrf_of(console.get("/admin/").text)
        assert console.post("/admin/logout", data={"csrf_token": signed_csrf}).status_code == 303


def _money(stack: ProcessStack, known: Secrets, recorder: Recorder, token: str) -> list[str]:
    sdk = stripe.StripeClient(
        stack.env["STRIPE_SECRET_KEY"],
        base_addresses={"api": stack.sandbox_url},
        max_network_retries=0,
    )
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    with recorder.client(stack.base_url, headers=headers) as api:
        customer = api.post(
            "/api/admin/customers", json={"user_id": "e2e-user", "email": "payer@example.com"}
        )
        assert customer.status_code < 300, customer.text
        cus = customer.json()["id"]
        # What a browser with Stripe.js sends to Stripe: the card number and CVC.
        methods = {}
        for number in CARD_NUMBERS:
            pm = sdk.v1.payment_methods.create(
                {
                    "type": "card",
                    "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": CVC},
                }
            )
            methods[number] = pm.id
        for number in CARD_NUMBERS:
            recorder.label = "payment"
            response = api.post(
                "/api/admin/payments",
                json={
                    "customer": cus,
                    "amount": 4200,
                    "currency": "usd",
                    "payment_method": methods[number],
                    "return_url": "https://example.com/back",
                },
            )
            recorder.label = ""
            assert response.status_code in (200, 402), response.text
            if response.status_code == 200:
                payment = response.json()["payment"]
                ids.append(payment["id"])
                if payment["status"] == "requires_action":
                    httpx.post(f"{stack.sandbox_url}/_sandbox/3ds/{payment['id']}/complete")
                    api.post(f"/api/admin/payments/{payment['id']}/refresh")
        for payment_id in ids:
            api.post(f"/api/admin/payments/{payment_id}/refunds", json={"amount": 100})
        sub = api.post(
            "/api/admin/subscriptions",
            json={"customer": cus, "tier": "premium", "payment_method": methods[CARD_NUMBERS[0]]},
        )
        assert sub.status_code < 300, sub.text
        for path in (
            "/api/admin/payments",
            "/api/admin/refunds",
            "/api/admin/subscriptions",
            "/api/admin/customers",
            "/api/admin/events",
            "/api/admin/audit",
            "/api/admin/tokens",
            "/api/admin/admins",
            "/api/admin/metrics",
            "/api/admin/payments/pi_missing",
        ):
            api.get(path)
    with recorder.client(stack.base_url) as anonymous:
        for path in ("/healthz", "/readyz", "/metrics", "/api/billing/config", "/openapi.json"):
            anonymous.get(path)
        anonymous.get("/api/admin/payments", headers={"Authorization": f"Bearer {token}x"})
    return ids


def _webhooks(stack: ProcessStack, recorder: Recorder) -> None:
    with recorder.client(stack.base_url) as client:
        for _ in range(5):
            body, headers = stack.signed_event()
            assert (
                client.post("/api/webhooks/stripe", content=body, headers=headers).status_code
                == 200
            )
        body, headers = stack.signed_event()
        signature = headers["Stripe-Signature"]
        # flip the last hex digit: replacing it with a fixed one is a no-op one time in 16
        flipped = "1" if signature[-1] == "0" else "0"
        forged = {**headers, "Stripe-Signature": signature[:-1] + flipped}
        assert client.post("/api/webhooks/stripe", content=body, headers=forged).status_code == 400

    def applied() -> bool:
        with stack.sessions() as session:
            waiting = session.scalar(
                select(func.count()).where(StripeEvent.status.in_(("pending", "failed")))
            )
            total = session.scalar(select(func.count()).select_from(StripeEvent))
        return waiting == 0 and (total or 0) >= 5

    poll(applied, timeout=90, what="the worker to apply the webhooks", every=0.5)


def _dump_rows(url: str) -> Iterator[tuple[str, str]]:
    engine = sa_create_engine(url)
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    yield table, "\x1f".join("" if v is None else str(v) for v in row)
    finally:
        engine.dispose()


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
@pytest.mark.timeout(300)
def test_end_to_end_pass_leaks_nothing(
    database: str, tmp_path: Path, figures: dict[str, Any]
) -> None:
    known = Secrets({})
    known.add("stripe secret key", _made_up("sk_test_51Leak", 40))
    publishable = _made_up("pk_test_51Leak", 40)  # publishable: may be shown
    known.add("webhook secret", _made_up("whsec_", 32))
    known.add("paydesk secret key", secrets.token_urlsafe(36))
    password = "pw-" + secrets.token_urlsafe(18)
    known.add("admin password", password)
    db_password = "dbpw-" + secrets.token_hex(10)
    if database == "postgresql":
        known.add("database password", db_password)
    for number in CARD_NUMBERS:
        known.add(f"card {number[-4:]}", number)
    recorder = Recorder()
    work = tmp_path / "run"
    with (
        _database(database, work, db_password) as url,
        process_stack(
            work / "logs",
            url,
            secret_key=known.values["stripe secret key"],
            publishable_key=publishable,
            webhook_secret=known.values["webhook secret"],
            paydesk_secret=known.values["paydesk secret key"],
            log_level="DEBUG",
        ) as stack,
    ):
        known.add("webhook endpoint secret", stack.endpoint_secret)
        _flow(stack, known, recorder, password)
        rows = list(_dump_rows(url))
    # The processes have stopped: their logs are complete.
    findings: list[Finding] = []
    wanted = known.values
    responses = 0
    for label, response in recorder.responses:
        allowed = {kind for kind, labels in known.shown_once.items() if label in labels}
        headers = "\n".join(
            f"{k}: {v}" for k, v in response.headers.multi_items() if k.lower() != "set-cookie"
        )
        findings += _search(f"response {label}", response.text + "\n" + headers, wanted, allowed)
        cookies = "\n".join(response.headers.get_list("set-cookie"))
        cookie_allowed = allowed | {k for k in wanted if k.startswith(("session id", "csrf"))}
        findings += _search(f"set-cookie of {label}", cookies, wanted, cookie_allowed)
        responses += 1
    for kind, labels in known.shown_once.items():
        shown = [lab for lab, r in recorder.responses if known.values[kind] in r.text]
        assert shown, f"{kind} was never shown"
        assert set(shown) <= labels, f"{kind} shown in {shown}, expected only in {labels}"
    for table, row in rows:
        findings += _search(f"table {table}", row, wanted)
    files = bytes_scanned = 0
    for path in _files(tmp_path):
        content = path.read_bytes().decode("utf-8", "replace")
        findings += _search(f"file {path.relative_to(tmp_path)}", content, wanted)
        files += 1
        bytes_scanned += path.stat().st_size
    # Canaries: the scans saw real content (a scan of nothing finds nothing).
    payment_ids = [
        r.json()["payment"]["id"]
        for lab, r in recorder.responses
        if lab == "payment" and r.status_code == 200
    ]
    assert payment_ids, "no payment was made"
    assert any("owner@example.com" in row for _, row in rows), "the table dump is empty"
    assert any(payment_ids[0] in row for _, row in rows), "the payment is not in the tables"
    config = [r for lab, r in recorder.responses if lab.endswith("/api/billing/config")]
    assert publishable in config[0].text, "the response scan does not see bodies"
    logs = (work / "logs" / "serve.log").read_text()
    assert payment_ids[0] in logs, "the server's log does not mention the payment"
    assert '"request"' in logs, "the server's access log is missing"
    assert '"level": "debug"' in logs, "the server did not log at DEBUG"
    for kind, value in wanted.items():
        _known[f"{kind} ({database})"] = value
    figures["responses_scanned"] = responses
    figures["rows_scanned"] = len(rows)
    figures["files_scanned"] = files
    figures["bytes_scanned"] = bytes_scanned
    figures["secrets_tracked"] = len(wanted)
    figures["findings"] = len(findings)
    assert findings == [], "\n".join(f"{f.kind} in {f.where}" for f in findings[:30])


# --- part 2: what the whole session left behind ----------------------------------------


def _fixture_secrets() -> dict[str, str]:
    """The suite's own fixture secrets (made up, but they must stay in their tests too)."""
    return {
        "fixture admin password": support_admins.PASSWORD,
        "fixture stripe key": support_stack.TEST_SECRET_KEY,
        "fixture webhook secret": webhook_support.SECRET,
    }


# Files that hold a secret on purpose, by name, and why; their contents are not searched.
CREDENTIAL_STORES = {
    "demo.json": "`paydesk demo`'s own sandbox-only keys under var/ (git-ignored, mode 0600)",
    "sandbox-state.json": "the offline Stripe's own records (Stripe keeps webhook secrets too)",
    "secret-key": "a mounted-secret input of the *_FILE settings tests",
    "webhook-secret": "a mounted-secret input of the *_FILE settings tests",
    "schemathesis.toml": "the fuzzer's configuration, carrying the API token it tests with",
}


def test_nothing_the_session_left_behind_holds_a_secret(
    tmp_path_factory: pytest.TempPathFactory, figures: dict[str, Any]
) -> None:
    assert _known, "the end-to-end pass must run first (it supplies the secrets to look for)"
    wanted = {**_known, **_fixture_secrets()}
    findings: list[Finding] = []

    def scan(where: str, content: str) -> None:
        findings.extend(_search(where, content, wanted))
        for kind, pattern in SHAPES.items():
            if pattern.search(content):
                findings.append(Finding(where, f"{kind}-shaped text"))

    sections = 0
    captured_bytes = 0
    for where, content in list(reliability.CAPTURED):
        scan(f"captured output of {where}", content)
        sections += 1
        captured_bytes += len(content)
    files = file_bytes = 0
    # The suite's own directories only: a user's demo keeps its keys and database in
    # var/ on purpose, and tests neither write there nor depend on what it holds.
    roots = [tmp_path_factory.getbasetemp(), reliability.OUTPUT_DIR]
    for root in roots:
        if not root.exists():
            continue
        for path in _files(root):
            if path.name in CREDENTIAL_STORES:
                continue
            data = path.read_bytes()
            scan(f"file {path}", data.decode("utf-8", "replace"))
            files += 1
            file_bytes += len(data)
    figures["captured_sections"] = sections
    figures["files_scanned"] = files
    figures["bytes_scanned"] = captured_bytes + file_bytes
    figures["findings"] = len(findings)
    shown = sorted({(f.kind, f.where) for f in findings})
    assert findings == [], "\n".join(f"{kind} in {where}" for kind, where in shown[:40])
