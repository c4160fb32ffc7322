"""The overlays are deployable as shipped: every process gets what it needs.

Each overlay is rendered, and the environment of its API, worker and migration
containers is resolved exactly as the kubelet would: ``envFrom`` the generated
ConfigMap, ``secretKeyRef`` from the overlay's example Secret. The example's
``REPLACE_WITH_…`` placeholders are the only thing filled in (with test values of
the documented shape); nothing else is added except the address of the Stripe
sandbox standing in for api.stripe.com and free loopback ports.

Staging is then started for real: ``paydesk migrate``, ``paydesk admin create``,
``paydesk serve`` and ``paydesk worker`` on a throwaway PostgreSQL database, each
with exactly its container's environment; an admin signs in to the console
(password and two-factor enrolment), an app user calls the billing API with a JWT,
and a signed webhook is delivered and applied by the worker. Production (live keys,
which never talk to the sandbox) is checked as far as the start-up rules go.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pyotp
import pytest
import yaml
from sqlalchemy import create_engine, text

from paydesk.settings import PLACEHOLDER, load_settings, serving_problems
from paydesk.stripe_gateway.webhook_signature import sign_payload
from paydesk_sandbox.config import SandboxConfig
from paydesk_sandbox.server import running_sandbox
from tests.deploy.rendering import K8S, Doc, find, render
from tests.support.databases import throwaway_postgres
from tests.support.servers import environment_without_paydesk, free_port
from tests.support.stack import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY
from tests.support.waiting import poll

LIVE_SECRET_KEY = "sk_live_" + "51Paydesk" + "L1ve" * 6
LIVE_PUBLISHABLE_KEY = "pk_live_" + "51Paydesk" + "PubL" * 6
WEBHOOK_SECRET = "whsec_" + "Deployed" * 4
JWT_SECRET = "deployed-jwt-secret-" + "0123456789abcdef" * 2
ADMIN_SECRET = "deployed-admin-secret-" + "fedcba9876543210" * 2
METRICS_TOKEN = "deployed-metrics-token-0123456789"
ISSUER = "https://id.cloudtolocalllm.test/"
AUDIENCE = "paydesk-billing"
# What the manifests listen on, moved to loopback here (not a bind of ours).
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SEED = re.compile(r'<code id="totp-key">([A-Z2-7]+)</code>')


def fillings(mode: str, database_url: str, prices: dict[str, str]) -> dict[str, str]:
    """A value for every placeholder the overlay's example Secret and config.env carry."""
    secret_key, publishable = (
        (TEST_SECRET_KEY, TEST_PUBLISHABLE_KEY)
        if mode == "TEST"
        else (LIVE_SECRET_KEY, LIVE_PUBLISHABLE_KEY)
    )
    return {
        f"REPLACE_WITH_{mode}_SECRET_KEY": secret_key,
        f"REPLACE_WITH_{mode}_PUBLISHABLE_KEY": publishable,
        f"REPLACE_WITH_{mode}_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REPLACE_WITH_DATABASE_URL": database_url,
        "REPLACE_WITH_METRICS_TOKEN": METRICS_TOKEN,
        "REPLACE_WITH_PAYDESK_SECRET_KEY": ADMIN_SECRET,
        "REPLACE_WITH_JWT_SECRET": JWT_SECRET,
        "REPLACE_WITH_TOKEN_ISSUER": ISSUER,
        "REPLACE_WITH_TOKEN_AUDIENCE": AUDIENCE,
        "REPLACE_WITH_KEY_CREATION_DATE": time.strftime("%Y-%m-%d"),
        **{f"price_REPLACE_WITH_{mode}_{tier}_PRICE_ID": price for tier, price in prices.items()},
    }


def _fill(value: str, filling: dict[str, str]) -> str:
    if PLACEHOLDER not in value:
        return value
    assert value in filling, f"no test value for the placeholder {value}"
    return filling[value]


def example_secret(overlay: str) -> dict[str, str]:
    """The overlay's secrets.example.yaml as key → placeholder."""
    doc = yaml.safe_load((K8S / overlay / "secrets.example.yaml").read_text())
    assert doc["metadata"]["name"] == "cloudtolocalllm-secrets"
    return {str(k): str(v) for k, v in doc["stringData"].items()}


def container_env(docs: list[Doc], kind: str, name: str, secret: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet would give the workload's one container."""
    doc = find(docs, kind, name)
    template = (
        doc["spec"]["jobTemplate"]["spec"]["template"]
        if kind == "CronJob"
        else doc["spec"]["template"]
    )
    (container,) = template["spec"]["containers"]
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"{name}: unexpected envFrom {source}"
        env.update(configmaps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]
        if "secretKeyRef" in ref:
            key = ref["secretKeyRef"]
            assert key["name"] == "cloudtolocalllm-secrets"
            if key["key"] in secret:
                env[entry["name"]] = secret[key["key"]]
            else:
                assert key.get("optional"), f"{name}: {entry['name']} names a key not in the Secret"
        else:
            key = ref["configMapKeyRef"]
            env[entry["name"]] = configmaps[key["name"]][key["key"]]
    return env


def resolved(overlay: str, mode: str, database_url: str, prices: dict[str, str]) -> dict[str, Any]:
    """API, worker and migration environments of ``overlay``, placeholders filled."""
    docs = render(overlay)
    secret = example_secret(overlay)
    filling = fillings(mode, database_url, prices)
    workloads = {
        "api": ("Deployment", "api-backend"),
        "worker": ("Deployment", "paydesk-worker"),
        "migrate": ("Job", "paydesk-migrate"),
        "backfill": ("CronJob", "paydesk-events-backfill"),
    }
    envs = {
        role: {k: _fill(v, filling) for k, v in container_env(docs, *w, secret).items()}
        for role, w in workloads.items()
    }
    for role, env in envs.items():
        leftover = [k for k, v in env.items() if PLACEHOLDER in v]
        assert not leftover, f"{overlay} {role}: placeholders left in {leftover}"
    return envs


@pytest.mark.parametrize(("overlay", "mode"), [("staging", "TEST"), ("production", "LIVE")])
def test_every_process_gets_what_it_needs(overlay: str, mode: str) -> None:
    prices = {t: f"price_{t.title()}Deployed1" for t in ("FREE", "PREMIUM", "ENTERPRISE")}
    envs = resolved(overlay, mode, "postgresql://paydesk:pw@db.internal:5432/paydesk", prices)
    api = load_settings(envs["api"])
    assert serving_problems(api) == []
    assert api.env == overlay
    assert api.secret_key is not None
    assert api.jwt_secret is not None
    assert (api.jwt_issuer, api.jwt_audience) == (ISSUER, AUDIENCE)
    assert api.prometheus_url is not None
    assert api.stripe_key_created is not None
    assert api.trusted_proxies, "the ingress must be a trusted proxy"
    assert api.metrics_token is not None
    for role in ("worker", "migrate", "backfill"):
        assert load_settings(envs[role]).env == overlay
    # The API's Prometheus URL must be reachable through the NetworkPolicy.
    egress_ports = {
        port["port"]
        for rule in find(render(overlay), "NetworkPolicy", "paydesk")["spec"]["egress"]
        for port in rule.get("ports", [])
    }
    assert int(api.prometheus_url.rsplit(":", 1)[1]) in egress_ports


def test_an_unfilled_example_secret_is_refused_by_name() -> None:
    env = container_env(render("staging"), "Deployment", "api-backend", example_secret("staging"))
    result = subprocess.run(
        [sys.executable, "-m", "paydesk", "config", "check"],
        env={**environment_without_paydesk(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "placeholder" in result.stderr


# --- staging, started for real ---------------------------------------------------------


def _run(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "paydesk", *argv],
        env={**environment_without_paydesk(), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"paydesk {' '.join(argv)}: {result.stderr[-2000:]}"
    return result.stdout


@contextmanager
def _process(env: dict[str, str], argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "paydesk", *argv],
        env={**environment_without_paydesk(), **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _args(doc: Doc, host_port: dict[str, str]) -> list[str]:
    """The container's args with its listening address moved to free loopback ports."""
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return [host_port.get(arg, arg) for arg in container["args"]]


class Browser:
    """A console client that keeps its cookies itself: staging marks them Secure, and
    this test speaks plain HTTP on loopback (TLS ends at the ingress)."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.client.request(method, path, headers={"Cookie": header}, **kwargs)
        for line in response.headers.get_list("set-cookie"):
            name, _, rest = line.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response


def _healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, f"exited: {log.read_text()[-3000:]}"
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_staging_as_rendered_signs_in_bills_and_processes_webhooks(tmp_path: Path) -> None:
    with ExitStack() as stack:
        sandbox = stack.enter_context(running_sandbox(SandboxConfig(webhook_retry_delays=(0.05,))))
        database_url = stack.enter_context(throwaway_postgres())
        bootstrap = _run(
            {"STRIPE_SECRET_KEY": TEST_SECRET_KEY, "PAYDESK_STRIPE_API_BASE": sandbox.url},
            "plans",
            "bootstrap",
        )
        prices = dict(re.findall(r"^STRIPE_PRICE_([A-Z]+)=(price_\w+)$", bootstrap, re.M))
        envs = resolved("staging", "TEST", database_url, prices)
        # The one addition: the sandbox stands in for api.stripe.com (test keys only).
        local = {"PAYDESK_STRIPE_API_BASE": sandbox.url, "PAYDESK_HOST": "127.0.0.1"}
        api_env, worker_env = envs["api"] | local, envs["worker"] | local

        _run(envs["migrate"] | local, "migrate")
        created = _run(api_env, "admin", "create", "--email", "ops@cloudtolocalllm.test")
        password = re.search(r"Password \(shown once\): (\S+)", created)
        assert password is not None

        docs = render("staging")
        port, metrics_port = free_port(), free_port()
        serve_args = _args(
            find(docs, "Deployment", "api-backend"),
            {ALL_INTERFACES: "127.0.0.1", "8000": str(port)},
        )
        worker_args = _args(find(docs, "Deployment", "paydesk-worker"), {"9000": str(metrics_port)})
        server_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
        server = stack.enter_context(_process(api_env, serve_args, server_log))
        stack.enter_context(_process(worker_env, worker_args, worker_log))
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _healthy(base, server, server_log), timeout=180, what="paydesk serve")

        # 1. An admin signs in to the console: password, then two-factor enrolment.
        browser = Browser(base)
        login = browser.request("GET", "/admin/login")
        assert login.status_code == 200
        csrf = CSRF.search(login.text)
        assert csrf is not None
        form = {"csrf_token": csrf.group(1)}
        signed = browser.request(
            "POST",
            "/admin/login",
            data=form | {"email": "ops@cloudtolocalllm.test", "password": password.group(1)},
        )
        assert signed.status_code == 303, signed.text[:500]
        assert signed.headers["location"] == "/admin/enrol"
        seed = SEED.search(browser.request("GET", "/admin/enrol").text)
        assert seed is not None
        enrolled = browser.request(
            "POST", "/admin/enrol", data=form | {"code": pyotp.TOTP(seed.group(1)).now()}
        )
        assert enrolled.status_code == 200, enrolled.text[:500]
        dashboard = browser.request("GET", "/admin/")
        assert dashboard.status_code == 200
        assert "ops@cloudtolocalllm.test" in dashboard.text

        # 2. An app user calls the billing API with the app's JWT.
        claims = {
            "sub": "user_deployed_1",
            "email": "user@cloudtolocalllm.test",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": int(time.time()) + 300,
        }
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
        mine = httpx.get(
            f"{base}/api/billing/subscription",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert mine.status_code == 200, mine.text
        assert mine.json() == {"subscription": None}

        # 3. Stripe delivers a signed webhook; the worker applies it to the mirror.
        customer = httpx.post(
            f"{sandbox.url}/v1/customers",
            data={"email": "webhook@cloudtolocalllm.test"},
            auth=(TEST_SECRET_KEY, ""),
            timeout=30,
        ).json()
        event = {
            "id": "evt_deployed_1",
            "object": "event",
            "type": "customer.created",
            "api_version": None,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": customer},
        }
        body = orjson.dumps(event).decode()
        delivered = httpx.post(
            f"{base}/api/webhooks/stripe",
            content=body,
            headers={
                "Stripe-Signature": sign_payload(body, WEBHOOK_SECRET),
                "Content-Type": "application/json",
            },
            timeout=60,
        )
        assert delivered.status_code == 200, delivered.text
        engine = create_engine(database_url)
        try:

            def applied() -> bool:
                with engine.connect() as connection:
                    status = connection.execute(
                        text("SELECT status FROM stripe_events WHERE event_id = 'evt_deployed_1'")
                    ).scalar()
                    mirrored = connection.execute(
                        text("SELECT count(*) FROM customers WHERE stripe_id = :id"),
                        {"id": customer["id"]},
                    ).scalar()
                return status == "processed" and mirrored == 1

            poll(applied, timeout=120, what="the worker applies the delivered event")
        finally:
            engine.dispose()
        assert ADMIN_SECRET not in server_log.read_text()
