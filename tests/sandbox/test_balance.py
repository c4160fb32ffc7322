"""Balance transactions, balance and account."""

from __future__ import annotations

import stripe
from sandbox_shapes import assert_same_keys


def test_charge_books_fee_and_net(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 10000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "expand": ["latest_charge.balance_transaction"],
        }
    )
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    txn = charge.balance_transaction
    assert isinstance(txn, stripe.BalanceTransaction)
    assert txn.amount == 10000
    assert txn.fee == 320  # 2.9% + 30
    assert txn.net == 9680
    assert txn.source == charge.id
    assert_same_keys(txn, "balance_transaction")
    refund = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 2500})
    refund_txn = stripe_client.v1.balance_transactions.retrieve(str(refund.balance_transaction))
    assert refund_txn.amount == -2500
    assert refund_txn.type == "refund"
    listed = stripe_client.v1.balance_transactions.list(params={"type": "charge"}).data
    assert [t.id for t in listed] == [txn.id]


def test_balance_adds_up(stripe_client: stripe.StripeClient) -> None:
    for _ in range(2):
        stripe_client.v1.payment_intents.create(
            params={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "payment_method_types": ["card"],
                "confirm": True,
            }
        )
    balance = stripe_client.v1.balance.retrieve()
    assert_same_keys(balance, "balance")
    assert balance.pending[0].currency == "usd"
    assert balance.pending[0].amount == 2 * (1000 - 59)


def test_uncaptured_charge_books_nothing(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "capture_method": "manual",
        }
    )
    assert stripe_client.v1.balance_transactions.list().data == []
    stripe_client.v1.payment_intents.capture(intent.id)
    assert len(stripe_client.v1.balance_transactions.list().data) == 1


def test_chargeback_books_the_dispute_fee(stripe_client: stripe.StripeClient) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "payment_method": "pm_card_createDispute",
            "payment_method_types": ["card"],
            "confirm": True,
        }
    )
    dispute = stripe_client.v1.disputes.list(params={"payment_intent": intent.id}).data[0]
    (withdrawal,) = dispute.balance_transactions
    assert withdrawal.amount == -5000
    assert withdrawal.fee == 1500
    assert stripe_client.v1.balance_transactions.retrieve(withdrawal.id).net == -6500


def test_account(stripe_client: stripe.StripeClient) -> None:
    account = stripe_client.v1.accounts.retrieve_current()
    assert account.id.startswith("acct_")
    assert account.charges_enabled is True
    assert_same_keys(account, "account")
