"""Monthly cost by strategy as an SVG line chart: what ``shelflife simulate`` writes and
what the dashboard shows for the deployment (``shelflife recommend``'s last pricing), so
both draw the same numbers the same way.

Each line carries its strategy and its steady monthly cost in ``data-`` attributes, so
a test (or a curious operator) can read what the drawing shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

COLOURS = ("#999999", "#1f77b4", "#17becf", "#ff7f0e", "#9467bd", "#2ca02c", "#000000")


def cost_chart(
    series: Mapping[str, Sequence[float]],
    title: str,
    *,
    steady: Mapping[str, float] | None = None,
    width: int = 820,
    height: int = 420,
) -> str:
    """``series`` (USD by month, per strategy) as a log-scale line chart: the
    strategies differ by orders of magnitude. ``steady``: each one's steady cost, for
    its line's ``data-steady-usd``."""
    left, bottom, top, right = 70, 40, 30, 240
    values = [v for row in series.values() for v in row if v > 0] or [1.0]
    # Whole decades around the figures (one at least).
    lo = 10.0 ** math.floor(math.log10(min(values)))
    hi = max(10.0 ** math.ceil(math.log10(max(values))), lo * 10)
    months = max((len(row) for row in series.values()), default=1)

    def x(month: int) -> float:
        return left + (width - left - right) * month / max(1, months - 1)

    def y(usd: float) -> float:
        usd = max(usd, lo)
        span = math.log10(hi) - math.log10(lo)
        return top + (height - top - bottom) * (1 - (math.log10(usd) - math.log10(lo)) / span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
        f'role="img" aria-label="{escape(title, quote=True)}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="18" font-size="14">{escape(title)}</text>',
    ]
    decade = lo
    while decade <= hi * 1.0001:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(decade):.1f}" '
            f'y2="{y(decade):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">${decade:g}</text>'
        )
        decade *= 10
    for month in range(0, months, 6):
        parts.append(
            f'<text x="{x(month):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{month + 1}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle">month</text>'
    )
    for index, (name, row) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in enumerate(row))
        label = escape(name, quote=True)
        known = steady is not None and name in steady
        usd = steady[name] if steady is not None and known else 0.0
        value = f' data-steady-usd="{usd:.6f}"' if known else ""
        parts.append(
            f'<polyline class="strategy" data-strategy="{label}"{value} fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        ly = top + 16 * index
        shown = f"{escape(name)} ${usd:.4f}" if known else escape(name)
        parts.append(
            f'<line x1="{width - right + 10}" x2="{width - right + 30}" y1="{ly}" '
            f'y2="{ly}" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{width - right + 36}" y="{ly + 4}">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
