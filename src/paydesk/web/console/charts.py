"""Small server-rendered SVG charts: no JavaScript, no inline styles (CSS classes only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 560, 200, 56, 28, 12


@dataclass(frozen=True)
class Series:
    """One named series; ``css`` picks its colour in console.css."""

    name: str
    values: Sequence[float]
    css: str


def axis_ticks(peak: float, *, integer: bool) -> list[float]:
    """Gridline values from 0 to a round top >= ``peak``, at most ~5 of them.

    Steps are 1, 2 or 5 times a power of ten; with ``integer`` (counts) a step is a
    whole number, so an axis never reads "207.5 payments".
    """
    peak = max(peak, 1 if integer else 0) or 1
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    count = math.ceil(peak / step - 1e-9)
    return [step * i for i in range(count + 1)]


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
    *,
    integer: bool = False,
) -> Markup:
    """Grouped bars, one group per label; each bar has a tooltip and the SVG a title.

    ``integer``: the values are counts, so the axis ticks are whole numbers.
    """
    ticks = axis_ticks(max((v for s in series for v in s.values), default=0), integer=integer)
    peak = ticks[-1]
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    group_w = plot_w / max(len(labels), 1)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for tick in ticks:
        y = PAD_TOP + plot_h * (1 - tick / peak)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_short(tick))}{escape(unit)}</text>"
        )
    for index, label in enumerate(labels):
        x0 = PAD_LEFT + index * group_w + group_w * 0.1
        for number, item in enumerate(series):
            value = item.values[index] if index < len(item.values) else 0
            h = plot_h * value / peak
            x = x0 + number * bar_w
            parts.append(
                f'<rect class="bar {escape(item.css)}" x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}"><title>{escape(item.name)} '
                f"{escape(label)}: {escape(_short(value))}{escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text class="axis" x="{x0 + group_w * 0.4:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {escape(s.css)}"></span>{escape(s.name)}</li>' for s in series
    )
    caption = f"<figcaption>{escape(title)}</figcaption>"
    return Markup(caption + "".join(parts) + f'<ul class="legend">{legend}</ul>')  # noqa: S704


def _short(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"
