import pytest

from paydesk_sandbox.billing import dunning, totals


def test_totals_without_balance() -> None:
    result = totals.compute([999, 2000], 0)
    assert (result.subtotal, result.total, result.amount_due) == (2999, 2999, 2999)
    assert result.ending_balance == 0


def test_credit_balance_is_applied_first() -> None:
    result = totals.compute([2999], -1000)
    assert result.amount_due == 1999
    assert result.ending_balance == 0
    assert result.balance_applied == 1000


def test_negative_total_becomes_credit() -> None:
    result = totals.compute([-1500, 500], 0)
    assert result.total == -1000
    assert result.amount_due == 0
    assert result.ending_balance == -1000


def test_failed_attempts_retry_then_reach_end_state() -> None:
    policy = dunning.DunningPolicy(retry_delays=(10, 20), end_state="unpaid")
    first = dunning.after_failed_attempt(1, 100, policy)
    assert (first.next_payment_attempt, first.subscription_status) == (110, "past_due")
    second = dunning.after_failed_attempt(2, 110, policy)
    assert second.next_payment_attempt == 130
    last = dunning.after_failed_attempt(3, 130, policy)
    assert last.exhausted
    assert last.next_payment_attempt is None
    assert last.subscription_status == "unpaid"


def test_default_policy_cancels() -> None:
    policy = dunning.DunningPolicy()
    outcome = dunning.after_failed_attempt(len(policy.retry_delays) + 1, 0, policy)
    assert outcome.subscription_status == "canceled"


def test_attempt_count_starts_at_one() -> None:
    with pytest.raises(ValueError, match="attempt_count"):
        dunning.after_failed_attempt(0, 0, dunning.DunningPolicy())


def test_first_invoice_status() -> None:
    assert dunning.status_after_first_invoice(0, paid=False) == "active"
    assert dunning.status_after_first_invoice(999, paid=True) == "active"
    assert dunning.status_after_first_invoice(999, paid=False) == "incomplete"
