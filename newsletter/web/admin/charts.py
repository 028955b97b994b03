"""Charts as inline SVG drawn on the server: no script, no third-party library.

Each chart is `<div class="chart">` holding the SVG plot and its legend as an HTML list
(readable at any width: the plot scales down on a phone, the legend's text does not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 20, 16, 40
# Distinguishable for the common colour-vision deficiencies (Okabe-Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")


GRID = 4  # horizontal grid intervals


def _nice_max(value: int) -> int:
    """A round top for the y axis: GRID steps of 1, 2 or 5 x 10^n, whole numbers at each line."""
    needed = max(value, 1) / GRID
    scale = 1
    while True:
        for factor in (1, 2, 5):
            if scale * factor >= needed:
                return scale * factor * GRID
        scale *= 10


def _frame(title: str, labels: Sequence[str], top: int) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" class="chart" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(GRID + 1):  # horizontal grid lines and y labels
        value = top * i // GRID
        y = TOP + plot_h - plot_h * i / GRID
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{value}</text>'
        )
    every = max(1, -(-len(labels) // 7))  # at most seven x labels: they must not overlap
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            x = _x(i, len(labels))
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="12">{escape(label)}</text>'
            )
    return parts


def _x(index: int, count: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    if count <= 1:
        return LEFT + plot_w / 2
    return LEFT + plot_w * index / (count - 1)


# Each line series also differs by dash pattern and marker shape, so lines that lie on each
# other (say bounced and complained, both 0) stay visible and tell apart without colour.
DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 4", "1 5", "12 2")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "down", "plus")


def _marker(shape: str, x: float, y: float, colour: str, inner: str = "") -> str:
    """A hollow marker (white fill, coloured edge): coinciding markers of other shapes show."""
    style = f'fill="#fff" stroke="{colour}" stroke-width="1.6"'
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" {style}>{inner}</circle>'
    if shape == "square":
        return (
            f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" {style}>{inner}</rect>'
        )
    offsets = {
        "triangle": ((0, -5), (4.5, 3.5), (-4.5, 3.5)),
        "down": ((0, 5), (4.5, -3.5), (-4.5, -3.5)),
        "diamond": ((0, -5.5), (5.5, 0), (0, 5.5), (-5.5, 0)),
        "cross": ((-4, -4), (4, 4), (0, 0), (4, -4), (-4, 4), (0, 0)),
        "plus": ((0, -5), (0, 5), (0, 0), (5, 0), (-5, 0), (0, 0)),
    }[shape]
    points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in offsets)
    return f'<polygon points="{points}" {style}>{inner}</polygon>'


def _swatch(i: int, *, lines: bool) -> str:
    """A small SVG drawing series `i` as the plot draws it: line, dash and marker, or a bar."""
    colour = COLOURS[i % len(COLOURS)]
    head = (
        '<svg xmlns="http://www.w3.org/2000/svg" class="swatch" viewBox="0 0 34 14" '
        'width="34" height="14" aria-hidden="true">'
    )
    if not lines:
        return f'{head}<rect x="11" y="2" width="10" height="10" fill="{colour}"/></svg>'
    dash = DASHES[i % len(DASHES)]
    return (
        f'{head}<line x1="1" y1="7" x2="33" y2="7" stroke="{colour}" stroke-width="2"'
        + (f' stroke-dasharray="{dash}"' if dash else "")
        + "/>"
        + _marker(MARKERS[i % len(MARKERS)], 17, 7, colour)
        + "</svg>"
    )


def _legend(names: Sequence[str], *, lines: bool = False, last: Sequence[str] = ()) -> str:
    """One entry per series, drawn as the series is, with its latest value when given: right
    whatever the lines hide of each other. Static: it toggles nothing."""
    items = []
    for i, name in enumerate(names):
        label = f"{name}: {last[i]}" if i < len(last) else name
        items.append(f'<li class="legend-item">{_swatch(i, lines=lines)}{escape(label)}</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    ticks: Sequence[str] | None = None,
) -> Markup:
    """One line per series over the labels (weeks); `ticks` are shorter axis labels.

    Every point has a tooltip (`<title>`) with its week and value, naming the other series
    that have the same value there (their markers lie under it)."""
    top = _nice_max(max((max(v, default=0) for v in series.values()), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    parts = _frame(title, ticks or labels, top)
    names = list(series)
    markers: list[str] = []
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        dash = DASHES[i % len(DASHES)]
        points = [
            (_x(j, len(values)), TOP + plot_h - plot_h * v / top) for j, v in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f"><title>{escape(name)}</title></polyline>"
        )
        for j, ((x, y), label, value) in enumerate(zip(points, labels, values, strict=False)):
            same = [
                other
                for other in names
                if other != name and j < len(series[other]) and series[other][j] == value
            ]
            also = f" (also {', '.join(same)})" if same else ""
            tip = f"<title>{escape(name)}, {escape(label)}: {value}{escape(also)}</title>"
            markers.append(_marker(MARKERS[i % len(MARKERS)], x, y, colour, tip))
    parts.extend(markers)  # over every line, so no line hides a marker
    parts.append("</svg>")
    last = [str(values[-1]) if values else "" for values in series.values()]
    legend = _legend(names, lines=True, last=last)
    return Markup(f'<div class="chart">{"".join(parts)}{legend}</div>')


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]]) -> Markup:
    """Grouped bars: for each label, one bar per series."""
    top = _nice_max(max((max(v, default=0) for v in series.values()), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, [], top)
    count = max(len(labels), 1)
    group_w = plot_w / count
    bar_w = group_w * 0.8 / max(len(series), 1)
    for j, label in enumerate(labels):
        x0 = LEFT + group_w * j + group_w * 0.1
        for i, (name, values) in enumerate(series.items()):
            value = values[j] if j < len(values) else 0
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x0 + i * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[i % len(COLOURS)]}">'
                f"<title>{escape(label)}, {escape(name)}: {value}</title></rect>"
            )
        parts.append(
            f'<text x="{LEFT + group_w * (j + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle" font-size="12">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup(f'<div class="chart">{"".join(parts)}{_legend(list(series))}</div>')
