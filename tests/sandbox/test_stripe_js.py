"""The sandbox's Stripe.js stand-in: its assets, and the publishable-key rules of the API."""

from __future__ import annotations

import httpx
import stripe

PK = "pk_test_" + "51Sandbox" + "Pub1" * 6


def test_the_stand_in_and_its_frames_are_served(sandbox_url: str) -> None:
    url = sandbox_url
    for path in ("/v3/", "/v3"):
        script = httpx.get(url + path)
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("application/javascript")
        assert "confirmCardPayment" in script.text
        assert "handleNextAction" in script.text
    card = httpx.get(url + "/v3/frames/card", params={"key": PK, "origin": "http://x", "id": "f"})
    assert card.status_code == 200
    for autocomplete in ("cc-number", "cc-exp", "cc-csc", "postal-code"):
        assert f'autocomplete="{autocomplete}"' in card.text
    csp = card.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert httpx.get(url + "/v3/frames/frame.js").status_code == 200


def test_publishable_key_only_on_stripe_js_calls(
    sandbox_url: str, stripe_client: stripe.StripeClient
) -> None:
    url = sandbox_url
    sdk = stripe_client
    auth = {"Authorization": f"Bearer {PK}"}
    for method, path in (
        ("GET", "/v1/customers"),
        ("POST", "/v1/customers"),
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/refunds"),
        ("GET", "/v1/events"),
        ("POST", "/v1/payment_methods/pm_x/attach"),
    ):
        refused = httpx.request(method, url + path, headers=auth)
        assert refused.status_code == 401, path
        assert "publishable API key" in refused.json()["error"]["message"]
    live = httpx.get(url + "/v1/customers", headers={"Authorization": "Bearer pk_live_" + "x" * 24})
    assert live.status_code == 401
    intent = sdk.v1.setup_intents.create({"payment_method_types": ["card"]})
    path = f"{url}/v1/setup_intents/{intent.id}"
    assert httpx.get(path, headers=auth).status_code == 400
    wrong = httpx.get(path, headers=auth, params={"client_secret": intent.client_secret + "x"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["param"] == "client_secret"
    missing = httpx.get(
        f"{url}/v1/setup_intents/seti_missing", headers=auth, params={"client_secret": "x"}
    )
    assert missing.status_code == 404
    pm = httpx.post(
        f"{url}/v1/payment_methods",
        headers=auth,
        data={"type": "card", "card[number]": "4000002500003155", "card[exp_month]": "1",
              "card[exp_year]": "2045", "card[cvc]": "123"},
    )  # fmt: skip
    assert pm.status_code == 200
    assert "cvc" not in pm.text.lower().replace("cvc_check", "")
    confirmed = httpx.post(
        f"{path}/confirm",
        headers=auth,
        data={"client_secret": intent.client_secret, "payment_method": pm.json()["id"]},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "requires_action"
    page = httpx.get(f"{url}/_sandbox/3ds/{intent.id}", params={"embedded": "1"})
    assert "Complete authentication" in page.text
    assert "Fail authentication" in page.text
    done = httpx.post(
        f"{url}/_sandbox/3ds/{intent.id}/complete", data={"redirect": "1", "embedded": "1"}
    )
    assert done.status_code == 200
    assert "Authentication completed" in done.text
    after = httpx.get(path, headers=auth, params={"client_secret": intent.client_secret})
    assert after.json()["status"] == "succeeded"
