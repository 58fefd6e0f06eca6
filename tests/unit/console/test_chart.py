"""The console's SVG chart: calls per bucket stacked by status class, rendered without I/O."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from services.console.chart import Bar, bars_from, class_totals, label, nice_max, svg

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 5, 1, 22, tzinfo=UTC)


def hours(*counts: dict[str, int]) -> list[Bar]:
    return bars_from(
        {"start": (START + timedelta(hours=i)).isoformat(), "counts": c}
        for i, c in enumerate(counts)
    )


def rects(markup: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(markup).iter(f"{SVG}rect") if "bar" in r.get("class", "")]


def test_the_stats_buckets_become_bars_with_every_class_counted() -> None:
    bars = bars_from([{"start": "2026-05-01T22:00:00Z", "counts": {"2xx": 3, "5xx": 1}}])
    assert bars[0].start == START
    assert bars[0].counts == {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 0, "5xx": 1}
    assert bars[0].total == 4


def test_the_chart_is_well_formed_svg_with_a_title_and_a_description() -> None:
    markup = svg(hours({"2xx": 2}), title="Calls <per> hour")
    root = ET.fromstring(markup)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "calls-chart-title calls-chart-desc"
    assert root.find(f"{SVG}title").text == "Calls <per> hour"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "2 calls in 1 hours"  # type: ignore[union-attr]


def test_one_rect_per_non_empty_class_stacked_bottom_up_from_2xx_to_5xx() -> None:
    markup = svg(hours({"2xx": 4, "4xx": 2, "5xx": 2}, {}, {"3xx": 1}))
    drawn = rects(markup)
    assert [r.get("class") for r in drawn] == [
        "bar bar-2xx",
        "bar bar-4xx",
        "bar bar-5xx",
        "bar bar-3xx",
    ]
    two, four, five = (float(r.get("y", 0)) for r in drawn[:3])
    assert two > four > five  # each class sits on top of the one before


def test_heights_are_proportional_to_the_counts() -> None:
    drawn = rects(svg(hours({"2xx": 4, "4xx": 1}, {"2xx": 2})))
    heights = [float(r.get("height", 0)) for r in drawn]
    assert heights[0] == 4 * heights[1] == 2 * heights[2]


def test_every_bar_segment_names_its_bucket_and_count_for_a_tooltip() -> None:
    drawn = rects(svg(hours({"4xx": 7})))
    assert drawn[0].find(f"{SVG}title").text == "2026-05-01 22:00 UTC: 7 4xx"  # type: ignore[union-attr]


def test_a_window_without_calls_says_so_and_draws_no_bar() -> None:
    markup = svg(hours({}, {}))
    assert rects(markup) == []
    assert "No calls in this window" in markup


def test_hourly_charts_label_each_midnight_and_daily_charts_every_day() -> None:
    hourly = svg(hours({"2xx": 1}, {"2xx": 1}, {"2xx": 1}))
    assert re.findall(r'font-size="10">(Sat 02)<', hourly) == ["Sat 02"]
    days = bars_from(
        {"start": (START + timedelta(days=i)).isoformat(), "counts": {"2xx": 1}} for i in range(3)
    )
    daily = svg(days, by="day")
    for day in days:
        assert label(day.start, "day") in daily


def test_the_scale_tops_out_at_a_round_number() -> None:
    assert [nice_max(n) for n in (0, 1, 3, 7, 10, 11, 240, 501)] == [1, 1, 5, 10, 10, 20, 500, 1000]


def test_class_totals_add_up_every_bucket() -> None:
    totals = class_totals(hours({"2xx": 1, "5xx": 2}, {"2xx": 3}))
    assert totals == {"1xx": 0, "2xx": 4, "3xx": 0, "4xx": 0, "5xx": 2}


def test_text_is_escaped_so_a_title_cannot_inject_markup() -> None:
    markup = svg(hours({"2xx": 1}), title="</title><script>alert(1)</script>")
    assert "<script>" not in markup
