"""The portal's settings: allow-list origins, SMTP, and where Stripe.js comes from."""

from __future__ import annotations

import pytest

from paydesk.errors import ConfigurationError
from paydesk.settings import load_settings


def test_defaults_and_parsing() -> None:
    settings = load_settings({})
    assert settings.portal_return_urls == ()
    assert (settings.portal_link_minutes, settings.portal_idle_minutes) == (5, 15)
    assert settings.smtp_url is None
    assert settings.stripe_js_url == "https://js.stripe.com/v3/"
    parsed = load_settings(
        {
            "PAYDESK_PORTAL_RETURN_URLS": "https://App.Example/billing, http://localhost:3000",
            "PAYDESK_STRIPE_API_BASE": "http://127.0.0.1:12111",
            "PAYDESK_SMTP_URL": "smtp://mailer:s3cret@mail.example:587",
            "PAYDESK_MAIL_FROM": "billing@example.com",
            "PAYDESK_PUBLIC_URL": "https://billing.example.com/",
        }
    )
    assert parsed.portal_return_urls == ("https://app.example", "http://localhost:3000")
    assert parsed.stripe_js_url == "http://127.0.0.1:12111/v3/"
    assert parsed.public_url == "https://billing.example.com"
    assert "s3cret" not in repr(parsed)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PAYDESK_PORTAL_RETURN_URLS": "app.example"}, "PAYDESK_PORTAL_RETURN_URLS"),
        ({"PAYDESK_PORTAL_RETURN_URLS": "ftp://app.example"}, "PAYDESK_PORTAL_RETURN_URLS"),
        ({"PAYDESK_PUBLIC_URL": "billing.example"}, "PAYDESK_PUBLIC_URL"),
        ({"PAYDESK_SMTP_URL": "mail.example:25"}, "PAYDESK_SMTP_URL"),
        ({"PAYDESK_SMTP_URL": "smtp://mail.example"}, "PAYDESK_MAIL_FROM"),
        (
            {"PAYDESK_SMTP_URL": "smtp://mail.example", "PAYDESK_MAIL_FROM": "b@example.com"},
            "PAYDESK_PUBLIC_URL",
        ),
        ({"PAYDESK_MAIL_FROM": "not an address"}, "PAYDESK_MAIL_FROM"),
        ({"PAYDESK_PORTAL_LINK_MINUTES": "0"}, "PAYDESK_PORTAL_LINK_MINUTES"),
        ({"PAYDESK_PAY_LINK_HOURS": "-1"}, "PAYDESK_PAY_LINK_HOURS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env)
    assert variable in str(caught.value)
    assert "s3cret" not in str(caught.value)
