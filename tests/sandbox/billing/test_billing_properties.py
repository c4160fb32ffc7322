"""Properties of the pure billing arithmetic, over many generated inputs."""

from hypothesis import given
from hypothesis import strategies as st

from paydesk_sandbox.billing import periods, proration, totals

# 2000-01-01 .. 2100-01-01, in seconds.
moments = st.integers(min_value=946_684_800, max_value=4_102_444_800)
intervals = st.sampled_from(periods.INTERVALS)
counts = st.integers(min_value=1, max_value=12)
amounts = st.integers(min_value=0, max_value=99_999_999)


@given(anchor=moments, interval=intervals, count=counts, cycles=st.integers(0, 60))
def test_boundaries_increase(anchor: int, interval: str, count: int, cycles: int) -> None:
    assert periods.boundary(anchor, interval, count, cycles) < periods.boundary(
        anchor, interval, count, cycles + 1
    )


@given(anchor=moments, interval=intervals, count=counts, offset=st.integers(0, 10**9))
def test_period_at_contains_the_moment(anchor: int, interval: str, count: int, offset: int) -> None:
    start, end = periods.period_at(anchor, interval, count, anchor + offset)
    assert start <= anchor + offset < end


@given(amount=amounts, start=moments, length=st.integers(1, 10**8), elapsed=st.integers(0, 10**8))
def test_share_is_bounded_and_monotonic(amount: int, start: int, length: int, elapsed: int) -> None:
    end = start + length
    share = proration.remaining_share(amount, start, end, start + elapsed)
    later = proration.remaining_share(amount, start, end, start + elapsed + 1)
    assert 0 <= later <= share <= amount


@given(old=amounts, new=amounts, length=st.integers(1, 10**8), elapsed=st.integers(0, 10**8))
def test_same_price_change_nets_zero(old: int, new: int, length: int, elapsed: int) -> None:
    same = proration.price_change(old, old, 0, length, elapsed)
    assert same.net == 0
    change = proration.price_change(old, new, 0, length, elapsed)
    assert (change.net > 0) <= (new > old)


@given(
    lines=st.lists(st.integers(-(10**7), 10**7), max_size=10), balance=st.integers(-(10**7), 10**7)
)
def test_totals_conserve_money(lines: list[int], balance: int) -> None:
    result = totals.compute(lines, balance)
    assert result.amount_due >= 0
    assert result.ending_balance <= 0
    # What is charged plus what stays as credit is exactly the total plus the balance.
    assert result.amount_due + result.ending_balance == sum(lines) + balance
