"""Charts are real PNGs whose bars scale with the data."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.charts import (
    HEIGHT,
    SERIES_COLOURS,
    WIDTH,
    Series,
    label_mix_chart,
    render_bar_chart,
    week_comparison_chart,
)

LABELS = ("question", "answer", "comment", "bug_report", "suggestion", "spam", "toxic")


def _open(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def _pixels_of(image: Image.Image, colour: tuple[int, int, int]) -> int:
    return sum(1 for pixel in image.getdata() if pixel == colour)


def test_label_mix_chart_is_a_valid_png_of_the_expected_size():
    image = _open(label_mix_chart({"question": 12, "spam": 3}, LABELS, title="Label mix"))
    assert image.size == (WIDTH, HEIGHT)


def test_bar_area_scales_with_the_counts():
    first = SERIES_COLOURS[0]
    one_bar = _pixels_of(_open(render_bar_chart(["a", "b"], [Series("n", [10, 0])], title="t")), first)
    two_bars = _pixels_of(_open(render_bar_chart(["a", "b"], [Series("n", [10, 10])], title="t")), first)
    half_bar = _pixels_of(_open(render_bar_chart(["a", "b"], [Series("n", [10, 5])], title="t")), first)
    assert one_bar > 0
    assert two_bars == pytest.approx(2 * one_bar, rel=0.02)
    assert half_bar == pytest.approx(1.5 * one_bar, rel=0.03)


def test_week_comparison_draws_both_series_and_unknown_labels():
    png = week_comparison_chart({"question": 4, "legacy_label": 2}, {"question": 8}, LABELS, title="Week")
    image = _open(png)
    assert _pixels_of(image, SERIES_COLOURS[0]) > 0
    assert _pixels_of(image, SERIES_COLOURS[1]) > 0


def test_empty_data_still_renders():
    image = _open(label_mix_chart({}, (), title="Nothing yet"))
    assert image.size == (WIDTH, HEIGHT)
    assert _pixels_of(image, SERIES_COLOURS[0]) == 0


def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match="values for 2 categories"):
        render_bar_chart(["a", "b"], [Series("n", [1])], title="t")
    with pytest.raises(ValueError, match="negative"):
        render_bar_chart(["a"], [Series("n", [-1])], title="t")
    with pytest.raises(ValueError, match="at least one series"):
        render_bar_chart(["a"], [], title="t")
