"""Settings: parsing, *_FILE variants and the key-mode guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from paydesk.errors import ConfigurationError
from paydesk.settings import load_settings, mask

# Fake keys of a realistic shape, assembled at run time.
SK_TEST = "sk_test_" + "51Fake" + "A1b2C3d4" * 3
SK_LIVE = "sk_live_" + "51Fake" + "A1b2C3d4" * 3
RK_TEST = "rk_test_" + "51Fake" + "A1b2C3d4" * 3
RK_LIVE = "rk_live_" + "51Fake" + "A1b2C3d4" * 3
PK_TEST = "pk_test_" + "51Fake" + "Z9y8X7w6" * 3
PK_LIVE = "pk_live_" + "51Fake" + "Z9y8X7w6" * 3
WHSEC = "whsec_" + "Q1w2E3r4" * 4
WHSEC_NEXT = "whsec_" + "P0o9I8u7" * 4


def refused(env: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    error = caught.value
    for value in env.values():
        if value.startswith(("sk_", "rk_", "pk_", "whsec_")) and len(value) > 12:
            assert value not in str(error), "the error must never quote a key"
    return error


def test_defaults_are_a_development_sqlite_setup() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.database_url.get_secret_value() == "sqlite:///var/paydesk.db"
    assert settings.key_mode is None
    assert settings.log_format == "console"


@pytest.mark.parametrize(
    ("env", "key", "mode"),
    [
        ("development", SK_TEST, "test"),
        ("staging", SK_TEST, "test"),
        ("staging", RK_TEST, "test"),
        ("production", SK_LIVE, "live"),
        ("production", RK_LIVE, "live"),
    ],
)
def test_accepted_key_modes(env: str, key: str, mode: str) -> None:
    settings = load_settings({"PAYDESK_ENV": env, "STRIPE_SECRET_KEY": key})
    assert settings.key_mode == mode
    assert settings.log_format == ("console" if env == "development" else "json")


@pytest.mark.parametrize(
    ("env", "key"),
    [("development", SK_LIVE), ("staging", SK_LIVE), ("staging", RK_LIVE), ("production", SK_TEST)],
)
def test_environment_refuses_the_wrong_mode(env: str, key: str) -> None:
    error = refused({"PAYDESK_ENV": env, "STRIPE_SECRET_KEY": key})
    assert error.variable == "STRIPE_SECRET_KEY"
    assert env in error.rule


def test_publishable_key_where_secret_belongs_is_refused() -> None:
    error = refused({"STRIPE_SECRET_KEY": PK_TEST})
    assert error.variable == "STRIPE_SECRET_KEY"
    assert "publishable" in error.rule


def test_secret_key_where_publishable_belongs_is_refused() -> None:
    error = refused({"STRIPE_SECRET_KEY": SK_TEST, "STRIPE_PUBLISHABLE_KEY": SK_TEST})
    assert error.variable == "STRIPE_PUBLISHABLE_KEY"


@pytest.mark.parametrize(
    "key", ["sk_test_", "sk_prod_abcdefghijkl", "hello", "sk_test_abc def ghij"]
)
def test_malformed_secret_key_is_refused(key: str) -> None:
    assert refused({"STRIPE_SECRET_KEY": key}).variable == "STRIPE_SECRET_KEY"


def test_keys_of_different_modes_are_refused() -> None:
    error = refused(
        {
            "PAYDESK_ENV": "production",
            "STRIPE_SECRET_KEY": SK_LIVE,
            "STRIPE_PUBLISHABLE_KEY": PK_TEST,
        }
    )
    assert error.variable == "STRIPE_PUBLISHABLE_KEY"


def test_staging_and_production_require_a_secret_key() -> None:
    assert refused({"PAYDESK_ENV": "staging"}).variable == "STRIPE_SECRET_KEY"


def test_unknown_environment_is_refused() -> None:
    assert refused({"PAYDESK_ENV": "prod"}).variable == "PAYDESK_ENV"


def test_webhook_secrets_accept_a_rotation_list_and_refuse_other_shapes() -> None:
    settings = load_settings({"STRIPE_WEBHOOK_SECRET": f"{WHSEC}, {WHSEC_NEXT}"})
    assert [s.get_secret_value() for s in settings.stripe_webhook_secrets] == [WHSEC, WHSEC_NEXT]
    assert refused({"STRIPE_WEBHOOK_SECRET": SK_TEST}).variable == "STRIPE_WEBHOOK_SECRET"


def test_alternative_api_base_is_refused_with_live_keys() -> None:
    env = {
        "PAYDESK_ENV": "production",
        "STRIPE_SECRET_KEY": SK_LIVE,
        "PAYDESK_STRIPE_API_BASE": "http://127.0.0.1:12111",
    }
    assert refused(env).variable == "PAYDESK_STRIPE_API_BASE"
    sandbox = load_settings({"STRIPE_SECRET_KEY": SK_TEST, "PAYDESK_STRIPE_API_BASE": "http://x/"})
    assert sandbox.stripe_api_base == "http://x"


def test_price_ids_must_look_like_price_ids() -> None:
    assert refused({"STRIPE_PRICE_PREMIUM": "prod_123"}).variable == "STRIPE_PRICE_PREMIUM"
    settings = load_settings({"STRIPE_PRICE_PREMIUM": "price_1ABC"})
    assert settings.stripe_price_premium == "price_1ABC"


def test_file_variants_are_read(tmp_path: Path) -> None:
    key_file = tmp_path / "secret-key"
    key_file.write_text(SK_TEST + "\n")
    hook_file = tmp_path / "webhook-secret"
    hook_file.write_text(WHSEC)
    settings = load_settings(
        {"STRIPE_SECRET_KEY_FILE": str(key_file), "STRIPE_WEBHOOK_SECRET_FILE": str(hook_file)}
    )
    assert settings.stripe_secret_key is not None
    assert settings.stripe_secret_key.get_secret_value() == SK_TEST
    assert settings.stripe_webhook_secrets[0].get_secret_value() == WHSEC


def test_file_variant_and_plain_variable_together_are_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "secret-key"
    key_file.write_text(SK_TEST)
    env = {"STRIPE_SECRET_KEY": SK_TEST, "STRIPE_SECRET_KEY_FILE": str(key_file)}
    assert refused(env).variable == "STRIPE_SECRET_KEY"


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    env = {"STRIPE_SECRET_KEY_FILE": str(tmp_path / "missing")}
    assert refused(env).variable == "STRIPE_SECRET_KEY_FILE"


def test_file_variant_contents_are_checked_like_plain_values(tmp_path: Path) -> None:
    key_file = tmp_path / "secret-key"
    key_file.write_text(SK_LIVE)
    assert refused({"STRIPE_SECRET_KEY_FILE": str(key_file)}).variable == "STRIPE_SECRET_KEY"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PAYDESK_PORT", "http"), ("PAYDESK_PORT", "70000"), ("PAYDESK_STRIPE_DEBUG", "maybe")],
)
def test_malformed_plain_settings_are_named(variable: str, value: str) -> None:
    assert refused({variable: value}).variable == variable


def test_settings_repr_never_shows_secrets() -> None:
    settings = load_settings({"STRIPE_SECRET_KEY": SK_TEST, "STRIPE_WEBHOOK_SECRET": WHSEC})
    assert SK_TEST not in repr(settings)
    assert WHSEC not in repr(settings)


def test_mask_keeps_only_the_kind() -> None:
    assert mask(SK_TEST) == "sk_test_****"
    assert mask(WHSEC) == "whsec_****"
    assert mask("postgres-password") == "****"
    assert mask(None) == "(not set)"
