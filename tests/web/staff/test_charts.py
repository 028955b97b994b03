"""Statistics charts stay readable when lines coincide, and every point says its value."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from fastapi.testclient import TestClient

from newsletter.web.admin.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = ["2020-W01", "2020-W02", "2020-W03", "2020-W04"]


def parse(markup: str) -> ET.Element:
    """The chart's <svg> plot (the first child of its <div class="chart">)."""
    return ET.fromstring(str(markup))[0]


def legend(markup: str) -> ET.Element:
    """The chart's legend, an HTML <ul> after the plot."""
    return ET.fromstring(str(markup))[1]


def test_coinciding_lines_differ_by_dash_and_marker() -> None:
    """Three series with equal values: each line has its own dash pattern and marker shape,
    and markers are drawn hollow on top of every line."""
    svg = parse(
        line_chart(
            "By status",
            WEEKS,
            {"bounced": [0, 0, 0, 0], "complained": [0, 0, 0, 0], "active": [1, 3, 3, 5]},
        )
    )
    lines = svg.findall(f"{SVG}polyline")
    assert [line.find(f"{SVG}title").text for line in lines] == ["bounced", "complained", "active"]
    dashes = [line.get("stroke-dasharray") for line in lines]
    assert len(set(dashes)) == 3  # the first is solid (None), the others dashed differently
    assert lines[0].get("points") == lines[1].get("points")  # they do lie on each other

    children = list(svg)
    last_line = max(children.index(line) for line in lines)
    shapes: dict[str, set[str]] = {}
    for element in children[last_line + 1 :]:
        title = element.find(f"{SVG}title")
        if title is not None and title.text and ", 2020-W" in title.text:
            assert element.get("fill") == "#fff"  # hollow: a marker beneath still shows
            shapes.setdefault(title.text.split(",")[0], set()).add(element.tag)
    assert shapes == {
        "bounced": {f"{SVG}circle"},
        "complained": {f"{SVG}rect"},
        "active": {f"{SVG}polygon"},
    }


def test_each_point_has_a_tooltip_with_its_value_and_who_shares_it() -> None:
    """A point's <title> names the series, the week and the value, and the series under it."""
    svg = parse(
        line_chart("Lang", WEEKS, {"be": [2, 4, 4, 7], "ru": [1, 4, 2, 7], "en": [0, 0, 0, 1]})
    )
    tips = [t.text for t in svg.iter(f"{SVG}title")]
    assert "be, 2020-W01: 2" in tips
    assert "be, 2020-W02: 4 (also ru)" in tips
    assert "ru, 2020-W02: 4 (also be)" in tips
    assert "en, 2020-W04: 1" in tips
    assert sum(1 for t in tips if t and ", 2020-W" in t) == 12  # one per point


def test_legend_matches_the_lines_and_gives_the_latest_values() -> None:
    """The legend (HTML, so readable on a phone) draws each series as its line is drawn, in
    order, with its last value."""
    chart = line_chart("x", WEEKS, {"a": [1, 1, 1, 1], "b": [1, 1, 1, 2], "c": [0, 0, 0, 0]})
    items = legend(chart).findall("li")
    assert ["".join(i.itertext()) for i in items] == ["a: 1", "b: 2", "c: 0"]
    lines = parse(chart).findall(f"{SVG}polyline")
    for item, line in zip(items, lines, strict=True):
        swatch = item.find(f"{SVG}svg/{SVG}line")
        assert swatch is not None
        assert swatch.get("stroke") == line.get("stroke")
        assert swatch.get("stroke-dasharray") == line.get("stroke-dasharray")


def test_hostile_series_names_are_escaped_and_empty_charts_draw() -> None:
    """Names with markup stay text; no data or all zeros still give a valid chart."""
    svg = line_chart("<b>t</b>", ["<w>"], {"<script>x</script>": [3]})
    assert "<script>" not in str(svg) and "&lt;script&gt;" in str(svg)
    parse(svg)
    parse(line_chart("empty", [], {"a": []}))
    parse(line_chart("zeros", WEEKS, {"a": [0, 0, 0, 0]}))
    parse(bar_chart("bars", [], {}))
    bars = parse(bar_chart("bars", ["2020-W05"], {"confirmations": [3], "unsubscribes": [1]}))
    assert [t.text for t in bars.iter(f"{SVG}title")][1:] == [
        "2020-W05, confirmations: 3",
        "2020-W05, unsubscribes: 1",
    ]


def test_statistics_page_draws_the_charts(editor_client: TestClient, edition: Any) -> None:
    """The page's charts are valid SVG with legends and point tooltips."""
    page = editor_client.get("/admin/statistics?weeks=4")
    assert page.status_code == 200
    assert page.text.count('<li class="legend-item">') == 5 + 3 + 2
    assert "stroke-dasharray" in page.text
