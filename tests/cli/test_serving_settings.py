"""Outside development `paydesk serve` refuses to start when a mounted feature lacks its
setting, `config check` and `doctor` say the same, and no console error page depends on
the missing key. Forwarded headers are believed only from PAYDESK_TRUSTED_PROXIES."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from paydesk.db.engine import create_engine, session_factory
from paydesk.db.migrate import upgrade_to_head
from paydesk.db.models import AuditEntry
from paydesk.errors import ConfigurationError
from paydesk.settings import load_settings, serving_problems
from paydesk.web import create_app
from tests.cli.test_commands import paydesk
from tests.support.servers import environment_without_paydesk, free_port, serve_in_thread
from tests.support.waiting import poll
from tests.test_settings import SK_TEST, WHSEC

SECRET_KEY = "k" * 20 + "Serving-Key-0123456789"
JWT_SECRET = "j" * 20 + "Serving-Jwt-0123456789"
METRICS_TOKEN = "m" * 10 + "Serving-Metrics"

COMPLETE = {
    "PAYDESK_ENV": "staging",
    "STRIPE_SECRET_KEY": SK_TEST,
    "STRIPE_WEBHOOK_SECRET": WHSEC,
    "PAYDESK_SECRET_KEY": SECRET_KEY,
    "PAYDESK_JWT_SECRET": JWT_SECRET,
    "PAYDESK_JWT_ISSUER": "https://id.example.test/",
    "PAYDESK_JWT_AUDIENCE": "paydesk",
    "PAYDESK_METRICS_TOKEN": METRICS_TOKEN,
}
REQUIRED = [
    "PAYDESK_SECRET_KEY",
    "PAYDESK_JWT_SECRET",
    "STRIPE_WEBHOOK_SECRET",
    "PAYDESK_METRICS_TOKEN",
]


def _without(variable: str) -> dict[str, str]:
    env = {k: v for k, v in COMPLETE.items() if k != variable}
    if variable == "PAYDESK_JWT_SECRET":
        env.pop("PAYDESK_JWT_ISSUER")
        env.pop("PAYDESK_JWT_AUDIENCE")
    return env


def test_a_complete_staging_environment_has_no_serving_problem() -> None:
    assert serving_problems(load_settings(COMPLETE)) == []


@pytest.mark.parametrize("variable", REQUIRED)
def test_serve_refuses_a_staging_environment_lacking_a_feature_setting(variable: str) -> None:
    env = _without(variable)
    result = paydesk("serve", "--port", "1", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert variable in result.stderr
    assert "Uvicorn running" not in output
    for value in env.values():
        assert len(value) < 20 or value not in output


@pytest.mark.parametrize("variable", REQUIRED)
def test_config_check_reports_what_serve_refuses(variable: str) -> None:
    result = paydesk("config", "check", env=_without(variable))
    assert result.returncode == 2
    assert f"configuration error: {variable}" in result.stderr
    assert "NOT SERVABLE" in result.stdout


def test_config_check_passes_a_complete_staging_environment() -> None:
    result = paydesk("config", "check", env=COMPLETE)
    assert result.returncode == 0, result.stderr
    for secret in (SECRET_KEY, JWT_SECRET, METRICS_TOKEN, WHSEC, SK_TEST):
        assert secret not in result.stdout


def test_doctor_fails_the_missing_feature_setting(tmp_path: Path) -> None:
    from paydesk.doctor import check_serving

    settings = load_settings(_without("PAYDESK_SECRET_KEY"))
    checks = list(check_serving(settings))
    assert [c.status for c in checks if c.name == "Serving settings"] == ["FAIL"]
    assert "PAYDESK_SECRET_KEY" in checks[0].detail
    assert SECRET_KEY not in repr(checks)
    assert any(c.name == "Trusted proxies" and c.status == "WARN" for c in checks)
    complete = list(
        check_serving(load_settings(COMPLETE | {"PAYDESK_TRUSTED_PROXIES": "10.0.0.0/8"}))
    )
    assert [c.status for c in complete] == ["PASS"]


@pytest.mark.parametrize("raw", ["*", "not-an-address", "10.0.0.0/99"])
def test_trusted_proxies_must_be_addresses(raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"PAYDESK_TRUSTED_PROXIES": raw})
    assert caught.value.variable == "PAYDESK_TRUSTED_PROXIES"


def test_console_error_pages_render_without_the_secret_key(tmp_path: Path) -> None:
    # The app as `serve` would have refused to start it: staging, no PAYDESK_SECRET_KEY.
    url = f"sqlite:///{tmp_path / 'nokey.db'}"
    upgrade_to_head(url)
    settings = load_settings(_without("PAYDESK_SECRET_KEY") | {"PAYDESK_DATABASE_URL": url})
    with serve_in_thread(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        page = client.get("/admin/login")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        posted = client.post("/admin/login", data={"email": "a@b.test", "password": "x" * 12})
        assert posted.status_code in (403, 503), posted.text[:300]
        assert posted.headers["content-type"].startswith("text/html")
        missing = client.get("/admin/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "paydesk", "serve", "--port", str(port)],
        env={**environment_without_paydesk(), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize(
    ("trusted", "recorded"),
    [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")],
    ids=["untrusted", "trusted"],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, recorded: str
) -> None:
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    upgrade_to_head(url)
    port = free_port()
    env = {"PAYDESK_DATABASE_URL": url, "PAYDESK_TRUSTED_PROXIES": trusted}
    server = _serve(env, port, tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        poll(healthy, timeout=120, what="paydesk serve healthy")
        with httpx.Client(base_url=base, timeout=30) as client:
            page = client.get("/admin/login")
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            response = client.post(
                "/admin/login",
                data={"csrf_token": token, "email": "nobody@x.test", "password": "w" * 12},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
        assert response.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = create_engine(url)
    try:
        with session_factory(engine)() as session:
            sources = session.scalars(
                select(AuditEntry.source_address).where(AuditEntry.action == "auth.sign_in")
            ).all()
    finally:
        engine.dispose()
    assert sources == [recorded]


@pytest.mark.parametrize("variable", ["PAYDESK_SECRET_KEY", "PAYDESK_JWT_SECRET"])
@pytest.mark.parametrize("value", ["a" * 32, "ab" * 20, "0123456" * 6])
def test_long_but_predictable_secrets_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(COMPLETE | {variable: value})
    assert refused.value.variable == variable
    assert value not in str(refused.value)


def test_openapi_is_published_in_development_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'openapi.db'}"
    upgrade_to_head(url)
    for env, expected in ((COMPLETE, 404), ({}, 200)):
        settings = load_settings(env | {"PAYDESK_DATABASE_URL": url})
        with serve_in_thread(create_app(settings)) as base:
            assert httpx.get(f"{base}/openapi.json").status_code == expected, env


def test_webhooks_setup_refuses_plain_http_outside_development(tmp_path: Path) -> None:
    result = paydesk(
        "webhooks", "setup", "http://api-staging.example/api/webhooks/stripe", env=COMPLETE
    )
    assert result.returncode == 2
    assert "https://" in result.stderr


def test_doctor_fails_a_plain_http_endpoint_outside_development() -> None:
    from paydesk.doctor import _check_webhook_endpoint
    from paydesk.stripe_gateway import build_gateway
    from paydesk_sandbox.config import SandboxConfig
    from paydesk_sandbox.server import running_sandbox

    with running_sandbox(SandboxConfig()) as sandbox:
        settings = load_settings(COMPLETE | {"PAYDESK_STRIPE_API_BASE": sandbox.url})
        gateway = build_gateway(settings)
        gateway.create_webhook_endpoint(
            {"url": "http://api-staging.example/api/webhooks/stripe", "enabled_events": ["*"]},
            key="doctor-http-endpoint",
        )
        check = _check_webhook_endpoint(settings, gateway)
        development = _check_webhook_endpoint(
            load_settings({"STRIPE_SECRET_KEY": SK_TEST, "PAYDESK_STRIPE_API_BASE": sandbox.url}),
            gateway,
        )
    assert check.status == "FAIL"
    assert "http://" in check.detail
    assert development.status != "FAIL" or "http://" not in development.detail
