"""``/v1/customers|payment_intents|charges/search`` with Stripe's query language."""

from __future__ import annotations

import pytest
import stripe


def _customers(client: stripe.StripeClient) -> list[stripe.Customer]:
    return [
        client.v1.customers.create(
            params={"email": f"user{i}@example.com", "name": name, "metadata": {"tier": tier}}
        )
        for i, (name, tier) in enumerate(
            [("Jenny Rosen", "premium"), ("Jane Doe", "free"), ("John Rosenberg", "premium")]
        )
    ]


def test_exact_and_metadata(stripe_client: stripe.StripeClient) -> None:
    jenny, _, john = _customers(stripe_client)
    found = stripe_client.v1.customers.search(params={"query": "email:'user0@example.com'"})
    assert [c.id for c in found.data] == [jenny.id]
    premium = stripe_client.v1.customers.search(params={"query": 'metadata["tier"]:"premium"'})
    assert [c.id for c in premium.data] == [john.id, jenny.id]
    assert premium.object == "search_result"


def test_substring_negation_and_or(stripe_client: stripe.StripeClient) -> None:
    jenny, jane, john = _customers(stripe_client)
    rosen = stripe_client.v1.customers.search(params={"query": "name~'rosen'"})
    assert {c.id for c in rosen.data} == {jenny.id, john.id}
    not_premium = stripe_client.v1.customers.search(params={"query": "-metadata['tier']:'premium'"})
    assert [c.id for c in not_premium.data] == [jane.id]
    either = stripe_client.v1.customers.search(
        params={"query": "email:'user1@example.com' OR name:'John Rosenberg'"}
    )
    assert {c.id for c in either.data} == {jane.id, john.id}
    both = stripe_client.v1.customers.search(
        params={"query": "name~'rosen' AND metadata['tier']:'premium' AND -name:'Jenny Rosen'"}
    )
    assert [c.id for c in both.data] == [john.id]


def test_pages(stripe_client: stripe.StripeClient) -> None:
    _customers(stripe_client)
    first = stripe_client.v1.customers.search(params={"query": "name~'jen'", "limit": 1})
    assert first.has_more is False
    page = stripe_client.v1.customers.search(params={"query": "email~'example'", "limit": 2})
    assert page.has_more is True
    rest = stripe_client.v1.customers.search(
        params={"query": "email~'example'", "limit": 2, "page": page.next_page}
    )
    assert rest.has_more is False
    assert len(rest.data) == 1
    everything = stripe_client.v1.customers.search(
        params={"query": "email~'example'", "limit": 1}
    ).auto_paging_iter()
    assert len(list(everything)) == 3


def test_payment_intents_and_charges(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create()
    for amount in (1000, 5000):
        stripe_client.v1.payment_intents.create(
            params={
                "amount": amount,
                "currency": "usd",
                "customer": customer.id,
                "payment_method": "pm_card_visa",
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
    big = stripe_client.v1.payment_intents.search(
        params={"query": f"customer:'{customer.id}' AND amount>2000 AND status:'succeeded'"}
    )
    assert [i.amount for i in big.data] == [5000]
    visa = stripe_client.v1.charges.search(
        params={"query": "payment_method_details.card.last4:'4242' AND refunded:'false'"}
    )
    assert len(visa.data) == 2


@pytest.mark.parametrize(
    "query",
    ["colour:'blue'", "email:'a' AND name:'b' OR phone:'c'", "name~'ab'", "amount>lots", ""],
)
def test_bad_queries(stripe_client: stripe.StripeClient, query: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.customers.search(params={"query": query})
    assert info.value.param == "query"
