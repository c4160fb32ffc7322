"""Console polish at a 1366 px laptop: no 404 (favicon included) on any page visited,
count charts with whole-number ticks, KPI cards on one line, tables using the
width, the Resume button of normal height; count axes never read "207.5"."""

from __future__ import annotations

import re
from typing import Any

from paydesk.web import create_app
from paydesk.web.console.charts import Series, axis_ticks, bar_chart
from tests.support.admins import make_admin
from tests.support.servers import serve_in_thread
from tests.support.stack import Stack
from tests.web.console.test_browser import browser, shot, sign_in
from tests.web.console.test_browser_operator import seed

__all__ = ["browser"]

AXIS = re.compile(r'<text class="axis"[^>]*text-anchor="end">([^<]*)</text>')


def test_count_axes_have_whole_number_ticks() -> None:
    chart = bar_chart("Payments", ["a", "b", "c"], [Series("ok", [0, 415, 3], "s2")], integer=True)
    ticks = AXIS.findall(str(chart))
    assert ticks == ["0", "200", "400", "600"]
    for peak in (1, 3, 7, 23, 415, 9_999):
        values = axis_ticks(peak, integer=True)
        assert all(v == int(v) for v in values), (peak, values)
        assert values[0] == 0
        assert values[-1] >= peak
        assert len(values) <= 6
    assert axis_ticks(0, integer=True) == [0, 1]


def test_pages_at_1366_px(browser: Any, stack: Stack) -> None:
    finance = make_admin(stack.sessions, stack.settings, "finance")
    with serve_in_thread(create_app(stack.settings, engine=stack.engine)) as base:
        ids = seed(stack, base)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        sign_in(page, base, finance)

        # Dashboard: count charts have whole ticks; KPI titles and badges on one line.
        page.goto(f"{base}/admin/")
        figures = page.locator("figcaption")
        assert figures.count() >= 5
        for caption in ("Payments", "Disputes opened"):
            chart = page.locator("figure", has=page.get_by_text(caption, exact=True))
            ticks = chart.locator("text.axis[text-anchor=end]").all_text_contents()
            assert len(ticks) >= 2, caption
            for tick in ticks:
                assert re.fullmatch(r"\d+k?", tick), (caption, tick)
        heights = page.evaluate(
            """[...document.querySelectorAll('.tile h2, .tile .status')]
            .map(e => [e.textContent, e.getClientRects().length,
                       e.getBoundingClientRect().height])"""
        )
        for text, rects, height in heights:
            assert rects == 1, text
            assert height < 24, (text, height)
        shot(page, "dashboard-1366")

        # Tables use the width of a 1366 px screen (no ~1250 px cap).
        page.goto(f"{base}/admin/payments")
        width = page.evaluate("document.querySelector('table').getBoundingClientRect().width")
        assert width > 1280, width

        # The Resume button after a cancel at period end is of normal height.
        page.goto(f"{base}/admin/subscriptions/{ids['subscription']}")
        page.get_by_label("At period end").check()
        page.get_by_role("button", name="Cancel subscription…").click()
        page.get_by_role("button", name="Cancel subscription").click()
        resume = page.get_by_role("button", name="Resume…").bounding_box()
        assert resume is not None
        assert resume["height"] < 48, resume
        shot(page, "subscription-resume-1366")

        for path in ("/admin/customers", "/admin/refunds", "/admin/events", "/admin/password"):
            page.goto(base + path)
        assert page.get_by_role("link", name="Admins & tokens").count() == 2  # nav + text
        assert missing == []
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert page.request.get(icon).status == 200  # headless chromium may not fetch it
        context.close()
