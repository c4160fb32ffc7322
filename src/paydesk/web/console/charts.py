"""Small server-rendered SVG charts: no JavaScript, no inline styles (CSS classes only)."""

from __future__ import annotations

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


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], unit: str = ""
) -> Markup:
    """Grouped bars, one group per label; each bar has a tooltip and the SVG a title."""
    peak = max((v for s in series for v in s.values), default=0) or 1
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    group_w = plot_w / max(len(labels), 1)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_short(peak * fraction))}{escape(unit)}</text>"
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
