"""Typed settings, read once from the environment and passed in.

Nothing here is a module-level global: ``load_settings(os.environ)`` builds a
frozen ``Settings`` that the CLI hands to the app, the worker and the gateway.
Every secret-bearing variable also accepts a ``NAME_FILE`` variant holding a path
(how Kubernetes mounts secrets); setting both is an error.

The key-mode guard lives here too: Stripe keys carry their mode in their prefix,
and a mismatch between the keys, or between the keys and ``PAYDESK_ENV``, stops
the process before it listens. Error messages name the variable and the rule,
never the value.

Over ~500 lines until it is split into one settings class per concern (issue #18,
part 6); until then every variable is parsed here, in one place.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from paydesk.errors import ConfigurationError

Environment = Literal["development", "staging", "production"]
KeyMode = Literal["test", "live"]
LogFormat = Literal["json", "console"]

ENVIRONMENTS: tuple[Environment, ...] = ("development", "staging", "production")

_SECRET_KEY = re.compile(r"^(?:sk|rk)_(test|live)_[A-Za-z0-9]{10,247}$")
_PUBLISHABLE_KEY = re.compile(r"^pk_(test|live)_[A-Za-z0-9]{10,247}$")
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=]{10,247}$")
_PRICE_ID = re.compile(r"^price_[A-Za-z0-9]{1,250}$")

# Variables that may instead be given as NAME_FILE (a path to a mounted secret).
FILE_VARIABLES = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "PAYDESK_DATABASE_URL",
    "PAYDESK_JWT_SECRET",
    "PAYDESK_SECRET_KEY",
    "PAYDESK_METRICS_TOKEN",
    "PAYDESK_SMTP_URL",
)

PLACEHOLDER = "REPLACE_WITH_"
MIN_JWT_SECRET_LENGTH = 32
MIN_SECRET_KEY_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 16
# A secret of few distinct characters ("a" * 32, "abab…") is long but guessable.
MIN_DISTINCT_CHARACTERS = 8


def _check_strength(var: str, value: str) -> None:
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        raise ConfigurationError(
            var,
            f"too predictable: use a random value (at least {MIN_DISTINCT_CHARACTERS} "
            "distinct characters), e.g. `openssl rand -hex 32`",
        )


# Development only: the console works out of the box on a laptop. Staging and
# production have no default; without PAYDESK_SECRET_KEY admin sign-in is refused.
DEVELOPMENT_SECRET_KEY = "paydesk-development-only-secret-key-do-not-use-in-production"  # noqa: S105

DEFAULT_DATABASE_PATH = Path("var") / "paydesk.db"


class Settings(BaseModel):
    """Everything Paydesk reads from its environment, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: Environment = "development"
    database_url: SecretStr = SecretStr(f"sqlite:///{DEFAULT_DATABASE_PATH}")
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secrets: tuple[SecretStr, ...] = ()
    stripe_price_free: str | None = None
    stripe_price_premium: str | None = None
    stripe_price_enterprise: str | None = None
    stripe_api_base: str | None = None
    stripe_debug: bool = False
    # Per attempt; the SDK retries a timed-out request (same idempotency key) up to 3 times.
    stripe_timeout_seconds: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: LogFormat = "console"
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_user_claim: str = "sub"
    jwt_email_claim: str = "email"
    # Admin Center (paydesk.auth): signing/encryption material, session lifetimes.
    secret_key: SecretStr | None = None
    admin_session_idle_minutes: int = 30
    admin_session_max_hours: int = 12
    admin_max_failed_logins: int = 5
    admin_lockout_minutes: int = 15
    stripe_key_created: date | None = None
    prometheus_url: str | None = None
    # /metrics: bearer token (without one, served in development only) and read cache.
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: int = 5
    # Port of `paydesk worker`'s own /metrics (None: not served).
    worker_metrics_port: int | None = None
    # How often the worker compares Stripe's /v1/events with the inbox (reconcile.py).
    reconcile_seconds: int = 60
    # Hardening (issue 14): proxies whose X-Forwarded-For/-Proto are believed (IPs or
    # CIDRs; empty: none, the peer address is the client).
    trusted_proxies: tuple[str, ...] = ()
    # Customer portal and pay links (paydesk.web.portal), and their emails.
    public_url: str | None = None
    portal_return_urls: tuple[str, ...] = ()
    portal_link_minutes: int = 5
    portal_idle_minutes: int = 15
    portal_session_max_minutes: int = 120
    pay_link_hours: int = 72
    smtp_url: SecretStr | None = None
    mail_from: str | None = None

    @property
    def key_mode(self) -> KeyMode | None:
        """``test`` or ``live`` as the secret key's prefix says; None without a key."""
        if self.stripe_secret_key is None:
            return None
        return _mode_of(self.stripe_secret_key.get_secret_value(), _SECRET_KEY)

    @property
    def stripe_js_url(self) -> str:
        """Stripe.js: js.stripe.com, or the sandbox's stand-in when the API is the sandbox."""
        if self.stripe_api_base:
            return f"{self.stripe_api_base}/v3/"
        return "https://js.stripe.com/v3/"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is an embedded SQLite file."""
        return self.database_url.get_secret_value().startswith("sqlite")


def _mode_of(value: str, pattern: re.Pattern[str]) -> KeyMode | None:
    match = pattern.match(value)
    if match is None:
        return None
    return "live" if match.group(1) == "live" else "test"


def _resolve_files(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the environment with every ``NAME_FILE`` replaced by the file's content."""
    resolved = dict(environ)
    for name in FILE_VARIABLES:
        file_var = f"{name}_FILE"
        path = environ.get(file_var)
        if not path:
            continue
        if environ.get(name):
            raise ConfigurationError(name, f"set either {name} or {file_var}, not both")
        try:
            resolved[name] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(file_var, "the file cannot be read") from exc
    return resolved


def _check_secret_key(value: str, env: Environment) -> None:
    var = "STRIPE_SECRET_KEY"
    if value.startswith("pk_"):
        raise ConfigurationError(
            var, "a publishable key (pk_…) was given where a secret key (sk_… or rk_…) belongs"
        )
    mode = _mode_of(value, _SECRET_KEY)
    if mode is None:
        raise ConfigurationError(
            var, "malformed key: expected sk_test_…, rk_test_…, sk_live_… or rk_live_…"
        )
    _check_mode_for_env(var, mode, env)


def _check_mode_for_env(var: str, mode: KeyMode, env: Environment) -> None:
    if env == "production" and mode == "test":
        raise ConfigurationError(var, "production refuses test-mode keys; use a live key")
    if env != "production" and mode == "live":
        raise ConfigurationError(var, f"{env} refuses live-mode keys; use a test key")


def _check_publishable_key(value: str, env: Environment, mode_of_key: KeyMode | None) -> None:
    var = "STRIPE_PUBLISHABLE_KEY"
    if value.startswith(("sk_", "rk_")):
        raise ConfigurationError(
            var, "a secret key was given where the publishable key (pk_…) belongs"
        )
    mode = _mode_of(value, _PUBLISHABLE_KEY)
    if mode is None:
        raise ConfigurationError(var, "malformed key: expected pk_test_… or pk_live_…")
    _check_mode_for_env(var, mode, env)
    if mode_of_key is not None and mode != mode_of_key:
        raise ConfigurationError(
            var, "its mode differs from STRIPE_SECRET_KEY's; both must be test or both live"
        )


def _parse_webhook_secrets(raw: str) -> tuple[SecretStr, ...]:
    # Several comma-separated secrets are accepted while an endpoint secret is rolled.
    secrets = tuple(part.strip() for part in raw.split(",") if part.strip())
    for secret in secrets:
        if not _WEBHOOK_SECRET.match(secret):
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET", "malformed secret: expected whsec_… (comma-separated)"
            )
    return tuple(SecretStr(secret) for secret in secrets)


def _parse_bool(var: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise ConfigurationError(var, "expected a boolean (1/0, true/false)")


def _parse_port(var: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigurationError(var, "expected a TCP port between 1 and 65535")
    return int(raw)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read, check and return the settings from ``environ`` (usually ``os.environ``).

    Raises ``ConfigurationError`` naming the first variable that breaks a rule.
    """
    env_vars = _resolve_files(environ)
    for name, raw_value in sorted(env_vars.items()):
        # The example Secret and config.env ship REPLACE_WITH_… placeholders; one left
        # in place is refused here rather than failing every request later.
        if name.startswith(("PAYDESK_", "STRIPE_")) and PLACEHOLDER in raw_value:
            raise ConfigurationError(name, "still the example placeholder; set the real value")
    env_raw = env_vars.get("PAYDESK_ENV", "development").strip() or "development"
    if env_raw not in ENVIRONMENTS:
        raise ConfigurationError("PAYDESK_ENV", "expected development, staging or production")
    env: Environment = env_raw

    secret = env_vars.get("STRIPE_SECRET_KEY", "").strip() or None
    if secret is not None:
        _check_secret_key(secret, env)
    elif env != "development":
        raise ConfigurationError("STRIPE_SECRET_KEY", f"required in {env}")
    mode_of_key = _mode_of(secret, _SECRET_KEY) if secret else None

    publishable = env_vars.get("STRIPE_PUBLISHABLE_KEY", "").strip() or None
    if publishable is not None:
        _check_publishable_key(publishable, env, mode_of_key)

    webhook_secrets = _parse_webhook_secrets(env_vars.get("STRIPE_WEBHOOK_SECRET", ""))

    prices: dict[str, str | None] = {}
    for tier in ("FREE", "PREMIUM", "ENTERPRISE"):
        var = f"STRIPE_PRICE_{tier}"
        value = env_vars.get(var, "").strip() or None
        if value is not None and not _PRICE_ID.match(value):
            raise ConfigurationError(var, "malformed price id: expected price_…")
        prices[tier.lower()] = value

    api_base = env_vars.get("PAYDESK_STRIPE_API_BASE", "").strip().rstrip("/") or None
    if api_base is not None:
        if mode_of_key == "live":
            raise ConfigurationError(
                "PAYDESK_STRIPE_API_BASE",
                "an alternative Stripe API address is refused with live keys",
            )
        if not api_base.startswith(("http://", "https://")):
            raise ConfigurationError("PAYDESK_STRIPE_API_BASE", "expected an http(s):// URL")

    log_format_raw = env_vars.get("PAYDESK_LOG_FORMAT", "").strip()
    if log_format_raw and log_format_raw not in ("json", "console"):
        raise ConfigurationError("PAYDESK_LOG_FORMAT", "expected json or console")
    log_format: LogFormat = (
        log_format_raw  # type: ignore[assignment]  # checked just above
        if log_format_raw
        else ("console" if env == "development" else "json")
    )

    database_url = env_vars.get("PAYDESK_DATABASE_URL", "").strip() or (
        f"sqlite:///{DEFAULT_DATABASE_PATH}"
    )

    jwt_secret = env_vars.get("PAYDESK_JWT_SECRET", "").strip() or None
    if jwt_secret is not None and len(jwt_secret) < MIN_JWT_SECRET_LENGTH:
        raise ConfigurationError(
            "PAYDESK_JWT_SECRET", f"too short: use at least {MIN_JWT_SECRET_LENGTH} characters"
        )
    if jwt_secret is not None:
        _check_strength("PAYDESK_JWT_SECRET", jwt_secret)
    jwks_url = env_vars.get("PAYDESK_JWT_JWKS_URL", "").strip() or None
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise ConfigurationError("PAYDESK_JWT_JWKS_URL", "expected an http(s):// URL")
    if env != "development" and (jwt_secret or jwks_url):
        for var in ("PAYDESK_JWT_ISSUER", "PAYDESK_JWT_AUDIENCE"):
            if not env_vars.get(var, "").strip():
                raise ConfigurationError(var, f"required in {env} when app tokens are accepted")

    secret_key = env_vars.get("PAYDESK_SECRET_KEY", "").strip() or None
    if secret_key is not None and len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            "PAYDESK_SECRET_KEY", f"too short: use at least {MIN_SECRET_KEY_LENGTH} characters"
        )
    if secret_key is not None:
        _check_strength("PAYDESK_SECRET_KEY", secret_key)
    if secret_key is None and env == "development":
        secret_key = DEVELOPMENT_SECRET_KEY
    key_created_raw = env_vars.get("PAYDESK_STRIPE_KEY_CREATED", "").strip()
    try:
        key_created = date.fromisoformat(key_created_raw) if key_created_raw else None
    except ValueError as exc:
        raise ConfigurationError(
            "PAYDESK_STRIPE_KEY_CREATED", "expected a date (YYYY-MM-DD)"
        ) from exc
    prometheus_url = env_vars.get("PAYDESK_PROMETHEUS_URL", "").strip().rstrip("/") or None
    if prometheus_url is not None and not prometheus_url.startswith(("http://", "https://")):
        raise ConfigurationError("PAYDESK_PROMETHEUS_URL", "expected an http(s):// URL")
    metrics_token = env_vars.get("PAYDESK_METRICS_TOKEN", "").strip() or None
    if metrics_token is not None and len(metrics_token) < MIN_METRICS_TOKEN_LENGTH:
        raise ConfigurationError(
            "PAYDESK_METRICS_TOKEN",
            f"too short: use at least {MIN_METRICS_TOKEN_LENGTH} characters",
        )
    if metrics_token is not None:
        _check_strength("PAYDESK_METRICS_TOKEN", metrics_token)

    raw_worker_port = env_vars.get("PAYDESK_WORKER_METRICS_PORT", "").strip()
    trusted_proxies = _parse_trusted_proxies(env_vars.get("PAYDESK_TRUSTED_PROXIES", ""))
    portal = _portal_settings(env_vars)

    return Settings(
        env=env,
        database_url=SecretStr(database_url),
        stripe_secret_key=SecretStr(secret) if secret else None,
        stripe_publishable_key=publishable,
        stripe_webhook_secrets=webhook_secrets,
        stripe_price_free=prices["free"],
        stripe_price_premium=prices["premium"],
        stripe_price_enterprise=prices["enterprise"],
        stripe_api_base=api_base,
        stripe_debug=_parse_bool("PAYDESK_STRIPE_DEBUG", env_vars.get("PAYDESK_STRIPE_DEBUG", "")),
        stripe_timeout_seconds=_parse_seconds("PAYDESK_STRIPE_TIMEOUT_SECONDS", env_vars, 30.0),
        host=env_vars.get("PAYDESK_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_parse_port("PAYDESK_PORT", env_vars.get("PAYDESK_PORT", "8000").strip() or "8000"),
        log_level=(env_vars.get("PAYDESK_LOG_LEVEL", "INFO").strip() or "INFO").upper(),
        log_format=log_format,
        jwt_secret=SecretStr(jwt_secret) if jwt_secret else None,
        jwt_jwks_url=jwks_url,
        jwt_issuer=env_vars.get("PAYDESK_JWT_ISSUER", "").strip() or None,
        jwt_audience=env_vars.get("PAYDESK_JWT_AUDIENCE", "").strip() or None,
        jwt_user_claim=env_vars.get("PAYDESK_JWT_USER_CLAIM", "").strip() or "sub",
        jwt_email_claim=env_vars.get("PAYDESK_JWT_EMAIL_CLAIM", "").strip() or "email",
        secret_key=SecretStr(secret_key) if secret_key else None,
        admin_session_idle_minutes=_parse_positive(
            "PAYDESK_ADMIN_SESSION_IDLE_MINUTES", env_vars, 30
        ),
        admin_session_max_hours=_parse_positive("PAYDESK_ADMIN_SESSION_MAX_HOURS", env_vars, 12),
        admin_max_failed_logins=_parse_positive("PAYDESK_ADMIN_MAX_FAILED_LOGINS", env_vars, 5),
        admin_lockout_minutes=_parse_positive("PAYDESK_ADMIN_LOCKOUT_MINUTES", env_vars, 15),
        stripe_key_created=key_created,
        prometheus_url=prometheus_url,
        metrics_token=SecretStr(metrics_token) if metrics_token else None,
        metrics_cache_seconds=_parse_positive("PAYDESK_METRICS_CACHE_SECONDS", env_vars, 5),
        worker_metrics_port=(
            _parse_port("PAYDESK_WORKER_METRICS_PORT", raw_worker_port) if raw_worker_port else None
        ),
        reconcile_seconds=_parse_positive("PAYDESK_RECONCILE_SECONDS", env_vars, 60),
        trusted_proxies=trusted_proxies,
        **portal,
    )


def _parse_trusted_proxies(raw: str) -> tuple[str, ...]:
    var = "PAYDESK_TRUSTED_PROXIES"
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            # "*" too: trusting every peer lets any client forge its address.
            raise ConfigurationError(
                var, "expected comma-separated IP addresses or CIDR ranges (no *)"
            ) from exc
    return entries


def serving_problems(settings: Settings) -> list[ConfigurationError]:
    """What ``paydesk serve`` lacks to run every feature it mounts (empty in development).

    Outside development the console and Admin API need ``PAYDESK_SECRET_KEY``, the
    billing API a way to verify app tokens, the webhook receiver a signing secret and
    ``/metrics`` its bearer token; without them those parts would answer 5xx to
    every request, so the server refuses to start instead. Names, never values.
    """
    if settings.env == "development":
        return []
    problems = []
    if settings.secret_key is None:
        problems.append(
            ConfigurationError(
                "PAYDESK_SECRET_KEY", f"required in {settings.env} (console and Admin API sign-in)"
            )
        )
    if settings.jwt_secret is None and settings.jwt_jwks_url is None:
        problems.append(
            ConfigurationError(
                "PAYDESK_JWT_SECRET",
                f"required in {settings.env} (billing API): set it or PAYDESK_JWT_JWKS_URL",
            )
        )
    if not settings.stripe_webhook_secrets:
        problems.append(
            ConfigurationError(
                "STRIPE_WEBHOOK_SECRET", f"required in {settings.env} (webhook receiver)"
            )
        )
    if settings.metrics_token is None:
        problems.append(
            ConfigurationError("PAYDESK_METRICS_TOKEN", f"required in {settings.env} (/metrics)")
        )
    return problems


def _origin_of(var: str, raw: str) -> str:
    match = re.match(r"^(https?)://([A-Za-z0-9.-]+(?::[0-9]{1,5})?)(/[^\s]*)?$", raw)
    if match is None:
        raise ConfigurationError(var, "expected http(s):// URLs")
    return f"{match.group(1)}://{match.group(2).lower()}"


def _portal_settings(env_vars: Mapping[str, str]) -> dict[str, Any]:
    """The customer portal's settings (PAYDESK_PUBLIC_URL, PAYDESK_PORTAL_*, SMTP)."""
    public_url = env_vars.get("PAYDESK_PUBLIC_URL", "").strip().rstrip("/") or None
    if public_url is not None:
        _origin_of("PAYDESK_PUBLIC_URL", public_url)
    return_urls = tuple(
        _origin_of("PAYDESK_PORTAL_RETURN_URLS", part.strip())
        for part in env_vars.get("PAYDESK_PORTAL_RETURN_URLS", "").split(",")
        if part.strip()
    )
    smtp_url = env_vars.get("PAYDESK_SMTP_URL", "").strip() or None
    if smtp_url is not None and not re.match(r"^smtps?://[^/\s]+(:[0-9]{1,5})?/?$", smtp_url):
        raise ConfigurationError(
            "PAYDESK_SMTP_URL", "expected smtp://[user:password@]host[:port] or smtps://…"
        )
    mail_from = env_vars.get("PAYDESK_MAIL_FROM", "").strip() or None
    if mail_from is not None and not re.match(r"^[^@\s<>]+@[^@\s<>]+$", mail_from):
        raise ConfigurationError("PAYDESK_MAIL_FROM", "expected an email address")
    if smtp_url is not None and mail_from is None:
        raise ConfigurationError("PAYDESK_MAIL_FROM", "required when PAYDESK_SMTP_URL is set")
    if smtp_url is not None and public_url is None:
        raise ConfigurationError(
            "PAYDESK_PUBLIC_URL", "required when PAYDESK_SMTP_URL is set (the emails' links)"
        )
    return {
        "public_url": public_url,
        "portal_return_urls": return_urls,
        "portal_link_minutes": _parse_positive("PAYDESK_PORTAL_LINK_MINUTES", env_vars, 5),
        "portal_idle_minutes": _parse_positive("PAYDESK_PORTAL_IDLE_MINUTES", env_vars, 15),
        "portal_session_max_minutes": _parse_positive(
            "PAYDESK_PORTAL_SESSION_MAX_MINUTES", env_vars, 120
        ),
        "pay_link_hours": _parse_positive("PAYDESK_PAY_LINK_HOURS", env_vars, 72),
        "smtp_url": SecretStr(smtp_url) if smtp_url else None,
        "mail_from": mail_from,
    }


def _parse_seconds(var: str, env_vars: Mapping[str, str], default: float) -> float:
    raw = env_vars.get(var, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 600:  # also refuses nan and inf
        raise ConfigurationError(var, "expected a number of seconds above 0, at most 600")
    return seconds


def _parse_positive(var: str, env_vars: Mapping[str, str], default: int) -> int:
    raw = env_vars.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(var, "expected a positive whole number")
    return int(raw)


def mask(value: str | None) -> str:
    """Show the kind of a secret (its prefix) and nothing that identifies it."""
    if not value:
        return "(not set)"
    for prefix in (
        "sk_test_",
        "sk_live_",
        "rk_test_",
        "rk_live_",
        "pk_test_",
        "pk_live_",
        "whsec_",
    ):
        if value.startswith(prefix):
            return f"{prefix}****"
    return "****"
