"""The dashboard shows the business: KPI tiles and charts with data."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise

import httpx

from paydesk import demo_seed
from paydesk.analytics import reference
from paydesk.web.console import dashboard
from tests.analytics.history import BASE, D, History, P, R, insert
from tests.support.stack import Stack

Console = Callable[[str], tuple[httpx.Client, str]]


def test_dashboard_has_figures_and_charts(stack: Stack, console_as: Console) -> None:
    demo_seed.seed_business(stack.settings, stack.engine, stack.gateway, customers=25)
    with stack.sessions() as session:
        board = dashboard.build(session)
    assert board.mrr_now > 0
    assert board.mrr[-1] == board.mrr_now
    assert board.active_subscriptions > 0
    assert board.succeeded[-1] > 0
    assert board.failed[-1] > 0
    assert board.refunded[-1] > 0
    client, _ = console_as("viewer")
    page = client.get("/admin/").text
    assert f"{board.mrr_now:.2f} USD" in page
    assert page.count("<svg") == 5
    heights = [float(h) for h in re.findall(r'class="bar [^"]+"[^>]*height="([0-9.]+)"', page)]
    assert any(height > 0 for height in heights)


def test_monthly_figures_equal_the_definitions(stack: Stack) -> None:
    """Each month's bars are that calendar month's figures, every currency summed."""
    day = 86_400
    month_of = [0, 31 * day, 59 * day, 90 * day + 7]  # Jan, Feb, Mar, Apr 2026 (offsets)
    history = History(
        payments=[
            P(month_of[m] + k * 3600, currency, status, code, 1000 + m, 1000 + m)
            for m in range(4)
            for k, (currency, status, code) in enumerate(
                [("usd", "succeeded", None), ("eur", "succeeded", None)][: m % 2 + 1]
                + [("usd", "requires_payment_method", "card_declined")] * m
            )
        ],
        refunds=[R(month_of[m] + 50, "usd", "succeeded", 100 * (m + 1)) for m in (1, 3)],
        disputes=[D(month_of[2] + 99, "eur", None)],
        subscriptions=[],
    )
    with stack.sessions() as session:
        insert(session, history)
        session.commit()
        now = datetime.fromtimestamp(BASE + 100 * day, UTC)  # 11 April
        board = dashboard.build(session, now=now)
        expected: list[tuple[int, int, float, int]] = []
        bounds = [*(BASE + offset - offset % day for offset in month_of), BASE + 100 * day]
        for a, b in pairwise(bounds):
            figures = [reference.overview(session, a, b, c) for c in ("usd", "eur")]
            expected.append(
                (
                    sum(f.payments.succeeded for f in figures),
                    sum(f.payments.failed for f in figures),
                    sum(f.refunds.amount for f in figures) / 100,
                    sum(f.disputes.opened for f in figures),
                )
            )
    got = list(zip(board.succeeded, board.failed, board.refunded, board.disputes, strict=True))
    assert got[:2] == [(0, 0, 0, 0), (0, 0, 0, 0)]  # Nov, Dec 2025: nothing
    assert got[2:] == expected
    assert expected[3] == (2, 3, 4.0, 0)  # April: not empty, so the months are told apart
