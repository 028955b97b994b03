"""Charts as inline SVG drawn on the server: no script, no third-party library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 150, 16, 40
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
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value}</text>'
        )
    every = max(1, -(-len(labels) // 7))  # at most seven x labels: they must not overlap
    for i, label in enumerate(labels):
        if i % every == 0 or i == len(labels) - 1:
            x = _x(i, len(labels))
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11">{escape(label)}</text>'
            )
    return parts


def _x(index: int, count: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    if count <= 1:
        return LEFT + plot_w / 2
    return LEFT + plot_w * index / (count - 1)


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        y = TOP + 14 + i * 18
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 14}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{WIDTH - RIGHT + 30}" y="{y}" font-size="12">{escape(name)}</text>'
        )
    return parts


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    ticks: Sequence[str] | None = None,
) -> Markup:
    """One line per series over the labels (weeks); `ticks` are shorter axis labels."""
    top = _nice_max(max((max(v, default=0) for v in series.values()), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    parts = _frame(title, ticks or labels, top)
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [
            (_x(j, len(values)), TOP + plot_h - plot_h * v / top) for j, v in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for (x, y), label, value in zip(points, labels, values, strict=False):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}, {escape(label)}: {value}</title></circle>"
            )
    parts.extend(_legend(list(series)))
    parts.append("</svg>")
    return Markup("".join(parts))


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
            f'text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    parts.extend(_legend(list(series)))
    parts.append("</svg>")
    return Markup("".join(parts))
