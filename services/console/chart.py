"""Server-rendered SVG bar chart: calls per hour or day, stacked by status class (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# bottom of the stack first; 1xx is rare but never dropped from the count
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# presentation attributes, not style: allowed under a CSP without 'unsafe-inline'
FILLS = {"1xx": "#7a7a7a", "2xx": "#2e7d32", "3xx": "#1565c0", "4xx": "#ef6c00", "5xx": "#c62828"}
_LEFT, _BOTTOM, _TOP, _RIGHT = 44, 30, 12, 8


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket of the stats reply: its start (UTC) and calls per status class."""

    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def bars_from(buckets: Iterable[Mapping[str, Any]]) -> list[Bar]:
    """The `buckets` of a calls.query.stats reply (start as RFC 3339 text or datetime)."""
    bars = []
    for bucket in buckets:
        start = bucket["start"]
        if isinstance(start, str):
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        counts = {c: int(bucket.get("counts", {}).get(c, 0)) for c in CLASSES}
        bars.append(Bar(start.astimezone(UTC), counts))
    return bars


def nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def label(start: datetime, by: str) -> str:
    """How a bucket is named in the chart and in its table: UTC, hour or day."""
    if by == "day":
        return start.strftime("%a %d %b")
    return start.strftime("%Y-%m-%d %H:00")


def class_totals(bars: Iterable[Bar]) -> dict[str, int]:
    totals = dict.fromkeys(CLASSES, 0)
    for bar in bars:
        for c in CLASSES:
            totals[c] += bar.counts[c]
    return totals


def svg(
    bars: list[Bar],
    *,
    by: str = "hour",
    title: str = "Calls per hour by status class",
    width: int = 720,
    height: int = 220,
    chart_id: str = "calls-chart",
) -> str:
    """An <svg> element (role img, a <title> and <desc>); the page adds the table alternative."""
    total = sum(b.total for b in bars)
    desc = f"{total} calls in {len(bars)} {'days' if by == 'day' else 'hours'}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    base = _TOP + plot_h
    parts.append(_axis(plot_w, base, nice_max(max((b.total for b in bars), default=0))))
    if total == 0:
        parts.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle" class="chart-empty">No calls in this window</text>'
        )
    else:
        top = nice_max(max(b.total for b in bars))
        slot = plot_w / len(bars)
        for i, bar in enumerate(bars):
            parts.extend(_stack(bar, _LEFT + i * slot, slot, base, plot_h / top, by))
        parts.extend(_ticks(bars, slot, base, by))
    parts.append(_legend(width))
    parts.append("</svg>")
    return "".join(parts)


def _axis(plot_w: float, base: float, top: int) -> str:
    return (
        f'<line class="chart-axis" x1="{_LEFT}" y1="{base}" x2="{_LEFT + plot_w}" y2="{base}" '
        f'stroke="#555"/>'
        f'<text class="chart-tick" x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" '
        f'font-size="10">{top}</text>'
        f'<text class="chart-tick" x="{_LEFT - 4}" y="{base}" text-anchor="end" '
        f'font-size="10">0</text>'
    )


def _stack(bar: Bar, x: float, slot: float, base: float, scale: float, by: str) -> list[str]:
    """One rect per non-empty class, bottom up, each with a <title> naming its count."""
    rects, y = [], base
    w = max(slot * 0.8, 1.0)
    for c in CLASSES:
        n = bar.counts[c]
        if not n:
            continue
        h = n * scale
        y -= h
        tip = f"{label(bar.start, by)} UTC: {n} {c}"
        rects.append(
            f'<rect class="bar bar-{c}" x="{x + (slot - w) / 2:.2f}" y="{y:.2f}" '
            f'width="{w:.2f}" height="{h:.2f}" fill="{FILLS[c]}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    return rects


def _ticks(bars: list[Bar], slot: float, base: float, by: str) -> list[str]:
    """Day labels: every bar when by day, at each midnight when by hour."""
    out = []
    for i, bar in enumerate(bars):
        if by == "hour" and bar.start.hour != 0:
            continue
        text = bar.start.strftime("%a %d") if by == "hour" else label(bar.start, by)
        out.append(
            f'<text class="chart-tick" x="{_LEFT + (i + 0.5) * slot:.1f}" y="{base + 16}" '
            f'text-anchor="middle" font-size="10">{escape(text)}</text>'
        )
    return out


def _legend(width: int) -> str:
    """Status classes top right, one swatch each (the table below names every count too)."""
    items = []
    for i, c in enumerate(reversed(CLASSES)):
        x = width - _RIGHT - (i + 1) * 44
        items.append(
            f'<rect x="{x}" y="2" width="8" height="8" fill="{FILLS[c]}"/>'
            f'<text class="chart-tick" x="{x + 11}" y="10" font-size="10">{c}</text>'
        )
    return f'<g class="chart-legend" aria-hidden="true">{"".join(items)}</g>'
