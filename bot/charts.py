"""Small Pillow bar charts rendered to PNG bytes.

Rendering is CPU work: callers on the event loop must use
`await asyncio.to_thread(render_bar_chart, ...)`, never call it directly.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

WIDTH = 900
HEIGHT = 480
MARGIN_LEFT = 60
MARGIN_RIGHT = 24
MARGIN_TOP = 64
MARGIN_BOTTOM = 70
BACKGROUND = (47, 49, 54)  # Discord dark theme
AXIS = (185, 187, 190)
TEXT = (220, 221, 222)
# Series colours: first is "this week"/the only series, second is the comparison.
SERIES_COLOURS = ((88, 101, 242), (153, 170, 181), (87, 242, 135), (254, 231, 92))


@dataclass(frozen=True)
class Series:
    """One named row of values, aligned with the chart's categories."""

    name: str
    values: Sequence[float]


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> float:
    left, _top, right, _bottom = draw.textbbox((0, 0), text, font=font)
    return right - left


def _nice_max(value: float) -> float:
    """Round the axis maximum up to 1/2/5 x 10^k so gridlines get round numbers."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def render_bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str) -> bytes:
    """Grouped vertical bars: one group per category, one bar per series. Returns PNG bytes."""
    if not series:
        raise ValueError("render_bar_chart needs at least one series")
    for row in series:
        if len(row.values) != len(categories):
            raise ValueError(f"series {row.name!r} has {len(row.values)} values for {len(categories)} categories")
        if any(v < 0 for v in row.values):
            raise ValueError(f"series {row.name!r} has negative values")

    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, label_font, small_font = _font(20), _font(14), _font(12)
    draw.text((MARGIN_LEFT, 18), title, fill=TEXT, font=title_font)

    # Legend (only useful with more than one series).
    if len(series) > 1:
        x = WIDTH - MARGIN_RIGHT
        for index in reversed(range(len(series))):
            name = series[index].name
            x -= _text_width(draw, name, label_font) + 8
            draw.text((x, 22), name, fill=TEXT, font=label_font)
            x -= 18
            draw.rectangle((x, 24, x + 12, 36), fill=SERIES_COLOURS[index % len(SERIES_COLOURS)])
            x -= 16

    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - plot_top
    top_value = _nice_max(max((v for row in series for v in row.values), default=0))

    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = plot_bottom - fraction * plot_height
        draw.line((plot_left, y, plot_right, y), fill=(64, 68, 75))
        value = top_value * fraction
        text = f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"
        draw.text((plot_left - 8 - _text_width(draw, text, small_font), y - 7), text, fill=AXIS, font=small_font)
    draw.line((plot_left, plot_bottom, plot_right, plot_bottom), fill=AXIS, width=2)

    if not categories:
        draw.text((plot_left + 12, plot_top + plot_height / 2), "no data", fill=AXIS, font=label_font)
    else:
        group_width = (plot_right - plot_left) / len(categories)
        bar_width = max(2.0, group_width * 0.8 / len(series))
        for c_index, category in enumerate(categories):
            group_left = plot_left + c_index * group_width + group_width * 0.1
            for s_index, row in enumerate(series):
                value = row.values[c_index]
                bar_height = plot_height * value / top_value
                x0 = group_left + s_index * bar_width
                if bar_height >= 1:
                    draw.rectangle(
                        (x0, plot_bottom - bar_height, x0 + bar_width - 2, plot_bottom - 1),
                        fill=SERIES_COLOURS[s_index % len(SERIES_COLOURS)],
                    )
            label = category if len(category) <= 14 else category[:13] + "…"
            label_x = plot_left + (c_index + 0.5) * group_width - _text_width(draw, label, label_font) / 2
            draw.text((label_x, plot_bottom + 10), label, fill=TEXT, font=label_font)

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def label_mix_chart(counts: Mapping[str, int], labels: Sequence[str], *, title: str) -> bytes:
    """One bar per label (in model order, then any extra labels seen in the data)."""
    categories = _categories(labels, counts)
    return render_bar_chart(categories, [Series("messages", [counts.get(c, 0) for c in categories])], title=title)


def week_comparison_chart(
    this_week: Mapping[str, int], last_week: Mapping[str, int], labels: Sequence[str], *, title: str
) -> bytes:
    """Label mix this week next to last week."""
    categories = _categories(labels, this_week, last_week)
    return render_bar_chart(
        categories,
        [
            Series("this week", [this_week.get(c, 0) for c in categories]),
            Series("last week", [last_week.get(c, 0) for c in categories]),
        ],
        title=title,
    )


def _categories(labels: Sequence[str], *counts: Mapping[str, int]) -> list[str]:
    ordered = list(dict.fromkeys(labels))
    for mapping in counts:
        ordered.extend(key for key in mapping if key not in ordered)
    return ordered
