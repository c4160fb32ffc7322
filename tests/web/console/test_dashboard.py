"""The dashboard shows the business: KPI tiles and charts with data."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from paydesk import demo_seed
from paydesk.web.console import dashboard
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
