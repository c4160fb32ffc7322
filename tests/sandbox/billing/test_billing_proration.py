import pytest

from paydesk_sandbox.billing import proration


def test_half_period_upgrade_credits_and_debits_half() -> None:
    result = proration.price_change(999, 2999, 0, 1000, 500)
    assert result.credit == -500  # 499.5 rounds half-up
    assert result.debit == 1500  # 1499.5 rounds half-up
    assert result.net == 1000


def test_change_at_period_start_prorates_everything() -> None:
    result = proration.price_change(999, 2999, 100, 200, 100)
    assert (result.credit, result.debit) == (-999, 2999)


def test_change_at_period_end_prorates_nothing() -> None:
    result = proration.price_change(999, 2999, 100, 200, 250)
    assert (result.credit, result.debit) == (0, 0)


def test_downgrade_nets_negative() -> None:
    result = proration.price_change(2999, 999, 0, 30, 10)
    assert result.credit == -1999
    assert result.debit == 666
    assert result.net < 0


def test_amounts_are_integers() -> None:
    result = proration.price_change(1, 7, 0, 3, 1)
    assert isinstance(result.credit, int)
    assert isinstance(result.debit, int)


def test_empty_period_is_rejected() -> None:
    with pytest.raises(ValueError, match="period_end"):
        proration.remaining_share(100, 5, 5, 5)
