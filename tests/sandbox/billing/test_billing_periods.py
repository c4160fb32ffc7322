from datetime import UTC, datetime

import pytest

from paydesk_sandbox.billing import periods


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def test_monthly_boundaries_clamp_to_month_end_and_recover() -> None:
    anchor = ts(2026, 1, 31, 12, 0)
    assert periods.boundary(anchor, "month", 1, 1) == ts(2026, 2, 28, 12, 0)
    assert periods.boundary(anchor, "month", 1, 2) == ts(2026, 3, 31, 12, 0)
    assert periods.boundary(anchor, "month", 1, 3) == ts(2026, 4, 30, 12, 0)


def test_leap_year_february() -> None:
    assert periods.boundary(ts(2028, 1, 30), "month", 1, 1) == ts(2028, 2, 29)


def test_yearly_from_leap_day_clamps() -> None:
    anchor = ts(2028, 2, 29)
    assert periods.boundary(anchor, "year", 1, 1) == ts(2029, 2, 28)
    assert periods.boundary(anchor, "year", 1, 4) == ts(2032, 2, 29)


def test_weekly_daily_and_interval_count() -> None:
    anchor = ts(2026, 3, 1)
    assert periods.boundary(anchor, "week", 2, 1) == ts(2026, 3, 15)
    assert periods.boundary(anchor, "day", 1, 3) == ts(2026, 3, 4)
    assert periods.boundary(anchor, "month", 3, 1) == ts(2026, 6, 1)


def test_month_crosses_year_end() -> None:
    assert periods.boundary(ts(2026, 11, 15), "month", 1, 2) == ts(2027, 1, 15)
    assert periods.boundary(ts(2026, 1, 15), "month", 1, -1) == ts(2025, 12, 15)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (ts(2026, 1, 31), (ts(2026, 1, 31), ts(2026, 2, 28))),
        (ts(2026, 2, 27), (ts(2026, 1, 31), ts(2026, 2, 28))),
        (ts(2026, 2, 28), (ts(2026, 2, 28), ts(2026, 3, 31))),
        (ts(2027, 7, 1), (ts(2027, 6, 30), ts(2027, 7, 31))),
    ],
)
def test_period_at_is_half_open(moment: int, expected: tuple[int, int]) -> None:
    assert periods.period_at(ts(2026, 1, 31), "month", 1, moment) == expected


def test_rejects_unknown_interval_and_count() -> None:
    with pytest.raises(ValueError, match="interval"):
        periods.boundary(0, "fortnight", 1, 1)
    with pytest.raises(ValueError, match="interval_count"):
        periods.boundary(0, "month", 0, 1)
